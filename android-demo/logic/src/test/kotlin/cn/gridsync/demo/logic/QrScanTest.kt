// Scanning the enrollment QR code as the camera screen does: frames of luminance
// bytes into EnrollViewModel.onFrame. The code is the one the relay's own console
// prints on its A4 sheet (its SVG, drawn as a camera would see the card: turned,
// grey paper, noise, padded rows), issued by an administrator signed in to a real
// `gridsync serve`; it fills the form and the worker enrolls with it. Frames without
// a code, and QR codes that are not enrollment links, change nothing.
package cn.gridsync.demo.logic

import com.google.zxing.BarcodeFormat
import com.google.zxing.qrcode.QRCodeWriter
import java.awt.RenderingHints
import java.awt.geom.AffineTransform
import java.awt.image.BufferedImage
import java.awt.image.DataBufferByte
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import kotlin.random.Random
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout

@Timeout(120)
class QrScanTest {
    private val relay = Relay()
    private val phone = Phone(relay)

    @AfterEach
    fun cleanUp() {
        phone.close()
        relay.close()
    }

    @Test
    fun theConsolesQrCodeSeenByTheCameraFillsTheFormAndTheWorkerEnrollsWithIt() = runBlocking<Unit> {
        val card = Console(relay, "admin").issueCard(WORKER)
        val vm = EnrollViewModel(phone.repo, phone.scope)
        vm.startScan()
        assertTrue(vm.state.value.scanning)

        // The camera first sees the desk, then the card.
        vm.onFrame(cameraFrame(null))
        assertEquals(EnrollState(scanning = true), vm.state.value)
        vm.onFrame(cameraFrame(card.picture))
        val filled = vm.state.value
        assertEquals(relay.url to card.code, filled.serverUrl to filled.code)
        assertFalse(filled.scanning, "a link closes the scanner")
        assertNull(filled.notice)
        // Filled, not sent: the worker sees the server and submits herself.
        assertNothingKept(phone)

        vm.submit().join()
        assertEquals(relay.url, vm.state.value.confirmPlainHttp, "a local plain-HTTP server is asked about as when typed")
        vm.confirmPlainHttp().join()
        assertEquals(UiMessage.ENROLLED, vm.state.value.notice?.message)
        assertEquals(WORKER, phone.repo.session.value?.userId)
    }

    @Test
    fun aQrCodeThatIsNotAnEnrollmentLinkSaysSoAndAFrameWithoutOneChangesNothing() = runBlocking<Unit> {
        val vm = EnrollViewModel(phone.repo, phone.scope)
        vm.onServerUrlChange("https://typed.example.cn")
        vm.onCodeChange("TYPED234")
        vm.startScan()
        val typed = vm.state.value

        // Noise and a blank sheet: no code in the frame, the scanner waits.
        vm.onFrame(cameraFrame(null))
        vm.onFrame(LuminanceFrame(ByteArray(640 * 480) { 200.toByte() }, 640, 480))
        assertEquals(typed, vm.state.value)

        // A web address, and a link whose server hides another host behind user info.
        val forged = "gridsync://enroll?server=" + URLEncoder.encode("https://gs.example.cn@evil.example", "UTF-8") + "&code=ABCD2345"
        for (text in listOf("https://example.org/not-ours", forged)) {
            vm.onFrame(cameraFrame(encode(text)))
            val s = vm.state.value
            assertEquals(UiMessage.QR_NOT_ENROLLMENT, s.notice?.message, text)
            assertEquals("扫描的二维码不是设备注册码", s.notice?.zh)
            assertEquals(typed.copy(notice = s.notice), s, "the form is as typed and the scanner stays open")
        }

        // Closed: a frame still on its way from the camera is ignored, even a link.
        val link = cameraFrame(encode("gridsync://enroll?server=https%3A%2F%2Fgs.example.cn&code=WXYZ6789"))
        vm.cancelScan()
        vm.onFrame(link)
        assertEquals(typed.copy(scanning = false), vm.state.value)
        vm.startScan()
        vm.onFrame(link)
        assertEquals("https://gs.example.cn" to "WXYZ6789", vm.state.value.serverUrl to vm.state.value.code)
        assertNothingKept(phone)
    }

    @Test
    fun aFrameTooShortForItsSizeIsABugNotAMissingCode() {
        val e = runCatching { LuminanceFrame(ByteArray(100), 20, 10, rowStride = 24) }.exceptionOrNull()
        assertTrue(e is IllegalArgumentException, "$e")
    }
}

/** A QR symbol as dark squares on a light square of [size] units (quiet zone included). */
private class QrPicture(val size: Int, val dark: List<IntArray>)

/** A card of the console's sheet: its QR code and the code printed under it. */
private class Card(val picture: QrPicture, val code: String)

/** A QR code of [text] from ZXing's encoder (for codes the console does not print). */
private fun encode(text: String): QrPicture {
    val m = QRCodeWriter().encode(text, BarcodeFormat.QR_CODE, 0, 0)
    val dark = (0 until m.height).flatMap { y -> (0 until m.width).filter { x -> m[x, y] }.map { x -> intArrayOf(x, y, 1, 1) } }
    return QrPicture(m.width, dark)
}

/**
 * What the camera's analyzer hands over: a 640×480 Y plane with rows padded to 704
 * bytes, a grey desk, and [qr] (if any) on white paper, turned by 9° and about 300
 * pixels across, drawn with soft edges and a little noise.
 */
private fun cameraFrame(qr: QrPicture?): LuminanceFrame {
    val (width, height, stride) = Triple(640, 480, 704)
    val image = BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY)
    val g = image.createGraphics()
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON)
    g.color = java.awt.Color(110, 110, 110)
    g.fillRect(0, 0, width, height)
    if (qr != null) {
        g.transform = AffineTransform().apply {
            translate(width / 2.0, height / 2.0)
            rotate(Math.toRadians(9.0))
            scale(300.0 / qr.size, 300.0 / qr.size)
            translate(-qr.size / 2.0, -qr.size / 2.0)
        }
        g.color = java.awt.Color(215, 215, 215)
        g.fillRect(0, 0, qr.size, qr.size)
        g.color = java.awt.Color(40, 40, 40)
        for ((x, y, w, h) in qr.dark) g.fillRect(x, y, w, h)
    }
    g.dispose()
    val pixels = (image.raster.dataBuffer as DataBufferByte).data
    val random = Random(18)
    val bytes = ByteArray(stride * height)
    for (y in 0 until height) {
        for (x in 0 until width) {
            val v = (pixels[y * width + x].toInt() and 0xff) + random.nextInt(-12, 13)
            bytes[y * stride + x] = v.coerceIn(0, 255).toByte()
        }
    }
    return LuminanceFrame(bytes, width, height, stride)
}

/** The relay's web console as an administrator's browser uses it. */
private class Console(private val relay: Relay, user: String) {
    private val http = HttpClient.newHttpClient()
    private var cookie = ""

    init {
        relay.setPassword(user, "scan-2026-admin")
        val signIn = post("/console/sign-in", mapOf("user" to user, "password" to "scan-2026-admin"))
        check(signIn.statusCode() == 303) { "sign-in: ${signIn.statusCode()} ${signIn.body()}" }
        cookie = signIn.headers().firstValue("set-cookie").orElseThrow().substringBefore(';')
    }

    /** Issue one code for [user] on the 设备注册码 page and read its card off the sheet. */
    fun issueCard(user: String): Card {
        val form = get("/console/enrollments").body()
        val csrf = form.substringAfter("name=\"csrf\" value=\"", "").substringBefore('"')
        check(csrf.isNotEmpty()) { "no CSRF token on the enrollments page" }
        val sheet = post("/console/enrollments", mapOf("csrf" to csrf, "region" to "", "user" to user, "server" to relay.url))
        check(sheet.statusCode() == 200) { "issuing a code: ${sheet.statusCode()} ${sheet.body()}" }
        val cards = sheet.body().split("<div class=\"card\"").drop(1)
        check(cards.size == 1) { "one card expected, ${cards.size} on the sheet" }
        val svg = cards[0].substringAfter("<svg").substringBefore("</svg>")
        val code = cards[0].substringAfter("<div class=\"code\">").substringBefore("</div>")
        return Card(svgPicture(svg), code)
    }

    private fun get(path: String) = http.send(
        HttpRequest.newBuilder(URI.create(relay.url + path)).header("Cookie", cookie).build(),
        HttpResponse.BodyHandlers.ofString(),
    )

    private fun post(path: String, form: Map<String, String>) = http.send(
        HttpRequest.newBuilder(URI.create(relay.url + path))
            .header("Cookie", cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .POST(HttpRequest.BodyPublishers.ofString(form.entries.joinToString("&") { (k, v) -> k + "=" + URLEncoder.encode(v, "UTF-8") }))
            .build(),
        HttpResponse.BodyHandlers.ofString(),
    )

    /**
     * The console's QR code as drawn: a `width` and one path of `M{x} {y}h{w}v{h}H{x}V{y}`
     * rectangles (the qrcode crate's SVG renderer). Anything else in the path fails the
     * test rather than drawing a wrong symbol.
     */
    private fun svgPicture(svg: String): QrPicture {
        val size = Regex("""width="(\d+)"""").find(svg)?.groupValues?.get(1)?.toInt() ?: error("no width in the SVG")
        val d = Regex("""<path[^>]* d="([^"]*)"""").find(svg)?.groupValues?.get(1) ?: error("no path in the SVG")
        val rect = Regex("""M(\d+) (\d+)h(\d+)v(\d+)H\1V\2""")
        check(rect.replace(d, "").isEmpty()) { "the SVG path holds more than rectangles: ${rect.replace(d, "").take(80)}" }
        val dark = rect.findAll(d).map { m -> m.groupValues.drop(1).map(String::toInt).toIntArray() }.toList()
        check(dark.size > 100) { "${dark.size} dark rectangles is no QR code" }
        return QrPicture(size, dark)
    }
}
