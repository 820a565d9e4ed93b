// The generated Kotlin bindings driven the way an Android app would: enroll with a
// real `gridsync serve` on loopback, patrol, report a case with a photo, act, sync,
// and see it arrive on a second device; the database opens only with its device key.

import java.io.File
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import uniffi.gridsync_ffi.*

class BindingsTest {
    private val relay = TestRelay()

    @BeforeEach
    fun startRelay() = relay.start()

    @AfterEach
    fun stopRelay() = relay.stop()

    private fun enrolled(user: String, folder: File) = relay.enrolled(user, folder)

    private fun device(user: String, folder: File): GridEngine = enrolled(user, folder).engine

    @Test
    fun aCaseWithAPhotoReachesTheDispatcher() {
        val folder = Files.createTempDirectory("devices").toFile()
        val worker = device("w-339901001001001", folder)
        val dispatcher = device("cd-339901001001", folder)

        val patrol = worker.startPatrol()
        val now = System.currentTimeMillis()
        worker.addTrackPoints(patrol, (0 until 12).map { TrackPointRecord(now + 5000L * it, 30.27 + it * 1e-5, 120.15) })
        worker.endPatrol(patrol)
        val photo = worker.ingestPhoto(File(System.getProperty("gridsync.photo")).readBytes(), "IMG_0001.jpg")
        val caseId = worker.reportCase(
            NewCaseRecord("消防通道被杂物堵塞", "5号楼东侧", "safety", "safety.fire_exit", "urgent",
                null, 30.27, 120.15, "望湖小区5号楼", listOf(photo.hash)))
        assertEquals("verified", worker.act(caseId, CaseAction.SelfHandle("已清理")))

        val phases = mutableListOf<String>()
        val summary = runBlocking {
            worker.sync(object : SyncObserver {
                override fun onProgress(progress: SyncProgress) { phases.add(progress.phase) }
            })
        }
        assertTrue(summary.pushed >= 3UL)
        assertTrue("photos" in phases)

        runBlocking { dispatcher.sync(null) }
        val found = dispatcher.listCases(CaseFilterRecord(listOf(), "消防", 0u))
        assertEquals(listOf(caseId), found.map { it.id })
        assertEquals(listOf("发现上报", "自行处置"), dispatcher.getCase(caseId).timeline.map { it.labelZh })
        assertEquals("archived", dispatcher.act(caseId, CaseAction.Archive))

        val refused = assertThrows(GridsyncException.Refused::class.java) {
            worker.act(caseId, CaseAction.Archive)
        }
        assertTrue(refused.message!!.contains("may not archive"))
        worker.closeStore()
        assertThrows(GridsyncException.Closed::class.java) { worker.startPatrol() }
    }

    @Test
    fun observersHearOfSyncedChangesUntilTheirHandleIsClosed() {
        val folder = Files.createTempDirectory("devices").toFile()
        val worker = device("w-339901001001001", folder)
        val dispatcher = device("cd-339901001001", folder)
        val seen = java.util.concurrent.CopyOnWriteArrayList<List<String>>()
        val handle = dispatcher.watch(object : DocumentsObserver {
            override fun onDocumentsChanged(docIds: List<String>) { seen.add(docIds) }
        })

        val caseId = worker.reportCase(
            NewCaseRecord("路灯损坏", "", "city", "city.streetlight", "normal",
                null, null, null, "", listOf()))
        runBlocking { worker.sync(null) }
        runBlocking { dispatcher.sync(null) }
        assertEquals(listOf(listOf(caseId)), seen.toList())

        handle.close()
        dispatcher.act(caseId, CaseAction.Accept)
        assertEquals(1, seen.size, "nothing after the handle is closed")
    }

    @Test
    fun theDatabaseOpensOnlyWithItsKeyAndRekeyMovesIt() {
        val folder = Files.createTempDirectory("devices").toFile()
        val worker = enrolled("w-339901001001001", folder)
        val caseId = worker.engine.reportCase(
            NewCaseRecord("井盖缺失", "", "city", null, "high", null, null, null, "", listOf()))
        worker.engine.closeStore()
        worker.engine.close()

        assertThrows(GridsyncException.WrongKey::class.java) { worker.reopen(newKey()) }
        assertThrows(GridsyncException.InvalidInput::class.java) { worker.reopen(worker.key.copyOf(16)) }

        val engine = worker.reopen(worker.key)
        assertEquals("井盖缺失", engine.getCase(caseId).title)
        val rotated = newKey()
        engine.rekey(rotated)
        engine.closeStore()
        engine.close()

        assertThrows(GridsyncException.WrongKey::class.java) { worker.reopen(worker.key) }
        worker.reopen(rotated).use { reopened ->
            assertEquals("井盖缺失", reopened.getCase(caseId).title)
            reopened.closeStore()
        }
    }
}
