// What the binding tests share: a real `gridsync serve` on loopback, and enrolled
// devices with their keys, the way an Android app enrolls.

import java.io.File
import java.nio.file.Files
import java.security.SecureRandom
import kotlinx.coroutines.runBlocking
import uniffi.gridsync_ffi.*

/** One enrolled device, with what reopens it: the key an app keeps in the keystore. */
class Device(val engine: GridEngine, val path: String, val user: String, val deviceId: String, val key: ByteArray) {
    fun reopen(key: ByteArray) = GridEngine.open(path, user, deviceId, key)
}

fun newKey() = ByteArray(32).also { SecureRandom().nextBytes(it) }

/** A `gridsync serve` in a temporary data folder, on a free loopback port. */
class TestRelay {
    val gridsync: String = System.getProperty("gridsync.bin")
    private lateinit var server: Process
    lateinit var data: File
    lateinit var url: String

    fun start() {
        data = Files.createTempDirectory("relay").toFile()
        server = ProcessBuilder(gridsync, "serve", "--listen", "127.0.0.1:0", "--data", data.path)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .also { it.environment()["GRIDSYNC_LOG"] = "warn" }
            .start()
        val line = server.inputStream.bufferedReader().readLine()
        url = line.removePrefix("gridsync listening on ")
    }

    fun stop() {
        server.destroy()
        server.waitFor()
    }

    /** Run `gridsync admin` against this relay's data folder; its standard output. */
    fun admin(vararg args: String): String {
        val proc = ProcessBuilder(gridsync, "admin", "--data", data.path, *args).start()
        val out = proc.inputStream.bufferedReader().readText().trim()
        check(proc.waitFor() == 0) { "gridsync admin ${args.joinToString(" ")} failed" }
        return out
    }

    fun enrolled(user: String, folder: File): Device {
        val code = admin("enroll", "--user", user)
        val deviceId = newDeviceId()
        val enrollment = runBlocking { enroll(url, code, deviceId, "junit") }
        val path = File(folder, "$user.db").path
        val key = newKey()
        val engine = GridEngine.open(path, enrollment.user, deviceId, key)
        engine.loadDirectory(enrollment.directoryJson)
        engine.setServer(url, enrollment.token)
        return Device(engine, path, enrollment.user, deviceId, key)
    }
}
