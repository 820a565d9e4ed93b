// A grid worker's day through the Kotlin SDK against a real `gridsync serve`, as an
// Android app lives it: enroll, patrol with check-ins, report with a photo, sync with
// progress; the dispatcher fetches the photo she never had and dispatches; the
// department handles it, the worker verifies; and a revoked phone erases itself.

import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import uniffi.gridsync_ffi.*

class DayTest {
    private val relay = TestRelay()
    private val photoBytes = File(System.getProperty("gridsync.photo")).readBytes()

    @BeforeEach
    fun startRelay() = relay.start()

    @AfterEach
    fun stopRelay() = relay.stop()

    /** Every progress report of one call. */
    private class Seen : SyncObserver {
        val all = java.util.concurrent.CopyOnWriteArrayList<SyncProgress>()
        override fun onProgress(progress: SyncProgress) { all.add(progress) }
        fun of(phase: String) = all.filter { it.phase == phase }
    }

    private fun GridEngine.syncNow(seen: Seen? = null) = runBlocking { sync(seen) }

    @Test
    fun aWholeDay() {
        val folder = Files.createTempDirectory("devices").toFile()
        val worker = relay.enrolled("w-339901001001001", folder).engine
        val dispatcher = relay.enrolled("cd-339901001001", folder).engine
        val handler = relay.enrolled("h-water-1", folder).engine

        val me = worker.me()
        assertEquals("grid_worker", me.role)
        val leak = worker.directory().categories.single { it.code == "livelihood" }
            .subcategories.single { it.code == "livelihood.water_leak" }

        val patrol = worker.startPatrol()
        val now = System.currentTimeMillis()
        worker.addTrackPoints(patrol, (0 until 10).map { TrackPointRecord(now + 5000L * it, 30.27 + it * 1e-5, 120.15) })
        worker.checkIn(patrol, "3号楼2单元", 30.2701, 120.1501)
        worker.addObservation(patrol, "东门路灯不亮")
        val photo = worker.ingestPhoto(photoBytes, "IMG_0001.jpg")
        val caseId = worker.reportCase(
            NewCaseRecord("楼上管道漏水", "楼下天花板渗水", "livelihood", leak.code, "high",
                null, 30.2701, 120.1501, "望湖小区3号楼", listOf(photo.hash),
                listOf(PersonRecord("王建国", "业主", "13800001234"))))
        worker.linkCaseToPatrol(patrol, caseId)
        worker.endPatrol(patrol)
        val walked = worker.getPatrol(patrol)
        assertEquals(listOf("3号楼2单元"), walked.checkins.map { it.place })
        assertEquals(listOf(caseId), walked.cases)
        assertEquals(10, walked.track.size)

        val pushed = Seen()
        worker.syncNow(pushed)
        assertEquals(0UL, worker.pendingChanges())
        assertEquals(0UL, pushed.of("push").last().bytesRemaining)
        assertEquals(0UL, pushed.of("photos").last().remaining)
        assertTrue(worker.rejectedChanges().isEmpty())

        dispatcher.syncNow()
        val counts = dispatcher.countCases(CaseFilterRecord(region = me.region)).associate { it.status to it.count }
        assertEquals(mapOf("reported" to 1UL), counts)
        assertEquals(listOf(caseId), dispatcher.listMyWork(0u, 0u).map { it.id })
        assertFalse(dispatcher.hasPhoto(photo.hash))
        val fetching = Seen()
        val fetched = runBlocking { dispatcher.fetchPhoto(photo.hash, fetching) }
        assertArrayEquals(worker.photoBytes(photo.hash), fetched)
        assertEquals(1UL, fetching.of("fetch").last().items)
        assertTrue(dispatcher.hasPhoto(photo.hash))

        assertEquals("accepted", dispatcher.act(caseId, CaseAction.Accept))
        assertEquals("dispatched", dispatcher.act(caseId, CaseAction.Dispatch("water", null)))
        val dispatch = dispatcher.getCase(caseId).timeline.last().details
        assertTrue(dispatch is CaseAction.Dispatch && dispatch.dept == "water" && dispatch.deadlineMs != null)
        dispatcher.syncNow()

        handler.syncNow()
        assertEquals(listOf(caseId), handler.listCases(CaseFilterRecord(assignedDept = "water")).map { it.id })
        handler.act(caseId, CaseAction.Feedback("已更换水管"))
        handler.syncNow()
        worker.syncNow()
        assertEquals("verified", worker.act(caseId, CaseAction.Verify(true, "已修好")))
        worker.syncNow()
        dispatcher.syncNow()
        assertEquals("archived", dispatcher.act(caseId, CaseAction.Archive))
        assertEquals(
            listOf("report", "accept", "dispatch", "feedback", "verify", "archive"),
            dispatcher.getCase(caseId).timeline.map { it.action })
    }

    @Test
    fun aRevokedPhoneErasesItselfAtItsNextSync() {
        val folder = Files.createTempDirectory("phone").toFile()
        val phone = relay.enrolled("w-339901001001001", folder)
        phone.engine.reportCase(
            NewCaseRecord("井盖缺失", "", "city", null, "high", null, null, null, "", listOf()))
        phone.engine.ingestPhoto(photoBytes, null)
        phone.engine.syncNow()
        assertTrue(folder.list()!!.isNotEmpty())

        relay.admin("revoke", "--device", phone.deviceId)
        assertThrows(GridsyncException.Wiped::class.java) { phone.engine.syncNow() }
        assertEquals(listOf<String>(), folder.list()!!.toList(), "database, journals and photos are gone")
        assertThrows(GridsyncException.Wiped::class.java) { phone.engine.listCases(CaseFilterRecord()) }
    }
}
