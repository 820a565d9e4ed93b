// The generated Kotlin bindings driven the way an Android app would: enroll with a
// real `gridsync serve` on loopback, patrol, report a case with a photo, act, sync,
// and see it arrive on a second device; the database opens only with its device key.

import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import uniffi.gridsync_ffi.*

class BindingsTest {
    private val gridsync = System.getProperty("gridsync.bin")
    private lateinit var server: Process
    private lateinit var data: File
    private lateinit var url: String

    @BeforeEach
    fun startRelay() {
        data = Files.createTempDirectory("relay").toFile()
        server = ProcessBuilder(gridsync, "serve", "--listen", "127.0.0.1:0", "--data", data.path)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .also { it.environment()["GRIDSYNC_LOG"] = "warn" }
            .start()
        val line = server.inputStream.bufferedReader().readLine()
        url = line.removePrefix("gridsync listening on ")
    }

    @AfterEach
    fun stopRelay() {
        server.destroy()
        server.waitFor()
    }

    /** One enrolled device, with what reopens it: the key an app keeps in the keystore. */
    private class Device(val engine: GridEngine, val path: String, val user: String, val deviceId: String, val key: ByteArray) {
        fun reopen(key: ByteArray) = GridEngine.open(path, user, deviceId, key)
    }

    private fun newKey() = ByteArray(32).also { SecureRandom().nextBytes(it) }

    private fun enrolled(user: String, folder: File): Device {
        val code = ProcessBuilder(gridsync, "admin", "--data", data.path, "enroll", "--user", user)
            .start().inputStream.bufferedReader().readText().trim()
        val deviceId = newDeviceId()
        val enrollment = runBlocking { enroll(url, code, deviceId, "junit") }
        val path = File(folder, "$user.db").path
        val key = newKey()
        val engine = GridEngine.open(path, enrollment.user, deviceId, key)
        engine.loadDirectory(enrollment.directoryJson)
        engine.setServer(url, enrollment.token)
        return Device(engine, path, enrollment.user, deviceId, key)
    }

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
