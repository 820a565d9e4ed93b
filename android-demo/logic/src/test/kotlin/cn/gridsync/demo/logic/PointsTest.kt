// 我的积分 on the worker's phone against a real `gridsync serve` on loopback: her
// reports earn points under the sample directory's rules (2 a valid report, 10 more
// for a major one), her community dispatcher adjusts them with a reason from his own
// device, and after both sync her points view model shows the sum, the reason and
// the leader by name; a month with nothing shows zeros. A directory revision without
// points rules empties the view at the next sync.
package cn.gridsync.demo.logic

import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import java.time.Instant
import java.time.YearMonth
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.fail
import uniffi.gridsync_ffi.GridEngine
import uniffi.gridsync_ffi.enroll
import uniffi.gridsync_ffi.newDeviceId

@Timeout(120)
class PointsTest {
    private lateinit var relay: Relay
    private val phones = mutableListOf<Phone>()

    @BeforeEach
    fun startRelay() {
        relay = Relay()
    }

    @AfterEach
    fun cleanUp() {
        phones.forEach { it.close() }
        relay.close()
    }

    private fun phone() = Phone(relay).also { phones += it }

    private suspend fun report(phone: Phone, title: String, severity: Severity) {
        val form = ReportViewModel(phone.repo, phone.scope)
        form.onTitleChange(title)
        form.onCategoryChange("city")
        form.onSeverityChange(severity)
        form.submit().join()
        present(form.state.value.reportedCaseId, "not reported: ${form.state.value.notice}")
    }

    @Test
    fun aDispatchersAdjustmentReachesTheWorkersMonthWithItsReasonAndLeader() = runBlocking<Unit> {
        val started = System.currentTimeMillis()
        val month = YearMonth.from(Instant.ofEpochMilli(started).atOffset(CHINA_TIME))
        val worker = phone()
        worker.enroll(WORKER)
        val points = PointsViewModel(worker.repo, worker.scope)
        assertEquals(month, points.state.value.month, "the current month in China time")
        points.state.await("no points yet this month") { it.loaded && it.totals?.points == 0L }

        report(worker, "垃圾堆放在路口", Severity.NORMAL)
        report(worker, "井盖缺失", Severity.URGENT)
        val earned = present(points.state.await("two reports counted") { it.totals?.validReports == 2L }.totals)
        assertEquals(1L, earned.majorCases)
        assertEquals(2L * 2 + 10, earned.computed, "2 a valid report, 10 more for the major one")
        assertEquals(0L, earned.adjusted)
        assertEquals(earned.computed, earned.points)
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        sync.syncNow().join()
        assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")

        // Her community dispatcher adds 3 with a reason, on his own device.
        Leader(relay, DISPATCHER).use { leader ->
            leader.engine.sync(null)
            leader.engine.adjustPoints(WORKER, month.year, month.monthValue.toUInt(), 3, "协助处置火情")
            assertEquals(0UL, leader.engine.sync(null).rejected)
        }
        sync.syncNow().join()
        assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")

        val adjusted = points.state.await("the adjustment on her phone") { it.totals?.adjusted == 3L }
        val totals = present(adjusted.totals)
        assertEquals(earned.computed, totals.computed)
        assertEquals(totals.computed + totals.adjusted, totals.points)
        assertEquals(17L, totals.points)
        val adjustment = adjusted.adjustments.single()
        assertEquals(3, adjustment.points)
        assertEquals("协助处置火情", adjustment.reason)
        assertEquals(DISPATCHER, adjustment.by)
        assertEquals("崔宏建", adjustment.byName, "the leader's name from the directory")
        assertTrue(adjustment.atMs in started..System.currentTimeMillis(), "made during the test: ${adjustment.atMs}")

        // The month before: nothing reported, nothing adjusted.
        points.previousMonth()
        val before = points.state.await("the month before") { it.month == month.minusMonths(1) && it.loaded }
        assertEquals(PointsTotals(0, 0, 0, 0, 0, 0, 0, 0, 0), before.totals)
        assertTrue(before.adjustments.isEmpty())
        points.nextMonth()
        points.state.await("back to this month") { it.month == month && it.loaded && it.totals?.points == 17L }
    }

    @Test
    fun aDirectoryWithoutPointsRulesShowsTheEmptyStateAfterASync() = runBlocking<Unit> {
        val worker = phone()
        worker.enroll(WORKER)
        val points = PointsViewModel(worker.repo, worker.scope)
        val zeros = points.state.await("zeros under the sample's rules") { it.loaded }
        assertEquals(0L, zeros.totals?.points, "$zeros")

        val json = relay.directoryJson()
        val withoutRules = json.replaceFirst(Regex(""",\s*"points_rules"\s*:\s*\{[^}]*\}"""), "")
        check(withoutRules != json) { "no points rules found in the directory" }
        relay.importDirectory(withoutRules)
        // The relay picks the revision up within 2 s; sync until the phone has it.
        val sync = SyncViewModel(worker.repo, worker.connectivity, worker.scope)
        withTimeoutOrNull(20.seconds) {
            while (!points.state.value.empty) {
                sync.syncNow().join()
                assertEquals(UiMessage.SYNC_DONE, sync.state.value.notice?.message, "${sync.state.value.notice}")
                delay(250)
            }
        } ?: fail("the points view did not empty: ${points.state.value}")
    }

    @Test
    fun aDispatcherHasNoPointsOfHisOwn() = runBlocking<Unit> {
        val dispatcher = phone()
        dispatcher.enroll(DISPATCHER)
        val points = PointsViewModel(dispatcher.repo, dispatcher.scope)
        val state = points.state.await("the empty state") { it.loaded }
        assertTrue(state.empty, "$state")
        assertTrue(state.adjustments.isEmpty())
    }
}

/**
 * A leader's device driven through the bindings directly: the demo app has no
 * adjustment screen (leaders adjust on their phones' bindings or the console).
 */
private class Leader(relay: Relay, user: String) : AutoCloseable {
    private val dir: File = Files.createTempDirectory("leader").toFile()
    val engine: GridEngine

    init {
        val deviceId = newDeviceId()
        val enrollment = runBlocking { enroll(relay.url, relay.enrollmentCode(user), deviceId, "junit", null) }
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        engine = GridEngine.open(File(dir, "leader.db").path, enrollment.user, deviceId, key)
        engine.loadDirectory(enrollment.directoryJson)
        engine.setServer(relay.url, enrollment.token)
    }

    override fun close() {
        engine.closeStore()
        engine.close()
        dir.deleteRecursively()
    }
}
