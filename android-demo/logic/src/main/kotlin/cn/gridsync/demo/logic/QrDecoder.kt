package cn.gridsync.demo.logic

import com.google.zxing.BinaryBitmap
import com.google.zxing.ChecksumException
import com.google.zxing.FormatException
import com.google.zxing.NotFoundException
import com.google.zxing.PlanarYUVLuminanceSource
import com.google.zxing.common.HybridBinarizer
import com.google.zxing.qrcode.QRCodeReader

/**
 * One camera frame's brightness, one byte per pixel, row after row: the Y plane of
 * a `YUV_420_888` image, which is what CameraX's `ImageAnalysis` delivers. A row may
 * be padded ([rowStride] ≥ [width]); the last row may stop at [width].
 */
class LuminanceFrame(val bytes: ByteArray, val width: Int, val height: Int, val rowStride: Int = width) {
    init {
        require(width > 0 && height > 0 && rowStride >= width) { "a ${width}x$height frame with row stride $rowStride" }
        require(bytes.size >= rowStride.toLong() * (height - 1) + width) {
            "${bytes.size} bytes are too few for a ${width}x$height frame with row stride $rowStride"
        }
    }
}

/**
 * Reads the text of a QR code in a camera frame (ZXing). A frame without a code, or
 * with one too blurred or cut off to read, gives null: the camera sends the next
 * frame a moment later. Not thread-safe; the camera's analyzer calls it from one
 * thread, one frame at a time.
 */
class QrDecoder {
    private val reader = QRCodeReader()

    fun decode(frame: LuminanceFrame): String? {
        val source = PlanarYUVLuminanceSource(
            frame.bytes, frame.rowStride, frame.height, 0, 0, frame.width, frame.height, false,
        )
        return try {
            reader.decode(BinaryBitmap(HybridBinarizer(source))).text
        } catch (e: NotFoundException) {
            null
        } catch (e: ChecksumException) {
            null
        } catch (e: FormatException) {
            null
        } finally {
            reader.reset()
        }
    }
}
