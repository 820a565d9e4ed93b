package cn.gridsync.demo.logic

import java.io.File
import java.net.Inet4Address
import java.net.NetworkInterface
import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail

/**
 * A real `gridsync serve` with its own data folder, on loopback unless [listen]
 * says otherwise (`0.0.0.0:0` to be reached at the machine's own address too).
 */
class Relay(listen: String = "127.0.0.1:0") : AutoCloseable {
    private val bin = System.getProperty("gridsync.bin") ?: error("gridsync.bin is not set (run through Maven)")
    val data: File = Files.createTempDirectory("relay").toFile()
    private var process: Process? = null
    lateinit var url: String
        private set

    init {
        start(listen)
    }

    /** The port the relay listens on. */
    val port: Int get() = url.substringAfterLast(':').toInt()

    private fun start(listen: String) {
        val p = ProcessBuilder(bin, "serve", "--listen", listen, "--data", data.path)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .also { it.environment()["GRIDSYNC_LOG"] = "warn" }
            .start()
        process = p
        val line = p.inputStream.bufferedReader().readLine()
            ?: fail("gridsync serve exited before listening (exit ${p.waitFor()})")
        url = line.removePrefix("gridsync listening on ")
    }

    /** Stop the server: the devices' next sync cannot reach it. */
    fun stop() {
        process?.let {
            it.destroy()
            if (!it.waitFor(10, TimeUnit.SECONDS)) it.destroyForcibly().waitFor()
        }
        process = null
    }

    /** Start it again on the same address and data. */
    fun restart() {
        stop()
        start(url.removePrefix("http://"))
    }

    /**
     * Run `gridsync admin --data <this relay's folder> [args]` with [input] on its
     * standard input; its standard output. Fails with its error output.
     */
    private fun admin(vararg args: String, input: String? = null): String {
        val err = File.createTempFile("admin", ".err")
        try {
            val p = ProcessBuilder(bin, "admin", "--data", data.path, *args).redirectError(err).start()
            p.outputStream.bufferedWriter().use { w -> input?.let(w::write) }
            val out = p.inputStream.bufferedReader().readText()
            check(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0) { "gridsync admin ${args.first()} failed: ${err.readText()}" }
            return out
        } finally {
            err.delete()
        }
    }

    /** A one-time enrollment code for [user], from the admin command. */
    fun enrollmentCode(user: String): String = admin("enroll", "--user", user).trim()

    /** Give [user] a console password (the admin command reads it from standard input). */
    fun setPassword(user: String, password: String) {
        admin("password", "--user", user, input = password + "\n")
    }

    /** Revoke [deviceId] from the admin command: its next sync is told to wipe. */
    fun revoke(deviceId: String) {
        admin("revoke", "--device", deviceId)
    }

    /** The directory revision in force (JSON). */
    fun directoryJson(): String = admin("directory", "show")

    /** Store [json] as the next directory revision; the running server picks it up within seconds. */
    fun importDirectory(json: String) {
        val file = File(data.parentFile, "${data.name}-directory.json")
        try {
            file.writeText(json)
            admin("directory", "import", file.path)
        } finally {
            file.delete()
        }
    }

    override fun close() {
        stop()
        data.deleteRecursively()
    }
}

/** An in-memory settings store (SharedPreferences on Android). */
class MemorySettings : SettingsStore {
    private val map = ConcurrentHashMap<String, String>()
    override fun get(key: String): String? = map[key]
    override fun put(key: String, value: String?) {
        if (value == null) map.remove(key) else map[key] = value
    }
}

/**
 * An in-memory key store (the Android Keystore on the phone). It copies in and out,
 * as the real one does by encrypting, so the repository may clear what it is given.
 */
class MemoryKeyStore : KeyStore {
    private val map = ConcurrentHashMap<String, ByteArray>()
    override fun load(deviceId: String): ByteArray? = map[deviceId]?.copyOf()
    override fun save(deviceId: String, key: ByteArray) {
        map[deviceId] = key.copyOf()
    }
    override fun delete(deviceId: String) {
        map.remove(deviceId)
    }

    /** The device ids that have a key. */
    val devices: Set<String> get() = map.keys.toSet()
}

/** A [SyncScheduler] that counts what was asked of it (WorkManager on the phone). */
class RecordingScheduler : SyncScheduler {
    val periodic = AtomicInteger()
    val soon = AtomicInteger()
    val cancelled = AtomicInteger()
    override fun schedulePeriodic() {
        periodic.incrementAndGet()
    }
    override fun syncSoon() {
        soon.incrementAndGet()
    }
    override fun cancel() {
        cancelled.incrementAndGet()
    }
}

/** Connectivity a test switches on and off. */
class FakeConnectivity(online: Boolean = true) : Connectivity {
    override val online = MutableStateFlow(online)
}

/**
 * One phone: a data folder, settings, a key store, connectivity, a background
 * scheduler, and the repository, patrol recorder and view-model scope the app
 * would have. [restart] is a process restart: a new repository and recorder over
 * the same folder, settings and keys.
 */
class Phone(private val relay: Relay) : AutoCloseable {
    val dir: File = Files.createTempDirectory("phone").toFile()
    val settings = MemorySettings()
    val keys = MemoryKeyStore()
    val connectivity = FakeConnectivity()
    val scheduler = RecordingScheduler()
    var scope = newScope()
        private set
    var repo = newRepo()
        private set
    /** What the foreground location service feeds on the phone. */
    var recorder = PatrolRecorder(repo)
        private set

    private fun newScope() = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private fun newRepo() = GridRepository(dir, settings, keys, Dispatchers.IO, "junit", scheduler)

    /**
     * Enroll through the enroll view-model with a fresh code for [user]. The relay
     * is plain `http://` on loopback, so the form asks whether it is a test server;
     * the user says yes.
     */
    suspend fun enroll(user: String): EnrollViewModel {
        val vm = EnrollViewModel(repo, scope)
        vm.onServerUrlChange(relay.url)
        vm.onCodeChange(relay.enrollmentCode(user))
        vm.submit().join()
        if (vm.state.value.confirmPlainHttp != relay.url) fail<Unit>("no plain-HTTP question for ${relay.url}: ${vm.state.value}")
        vm.confirmPlainHttp().join()
        if (repo.session.value?.userId != user) fail<Unit>("enrollment of $user failed: ${vm.state.value.notice}")
        vm.state.await("enrollment of $user") { it.session?.userId == user && !it.busy }
        return vm
    }

    fun restart() {
        scope.cancel()
        repo.close()
        scope = newScope()
        repo = newRepo()
        recorder = PatrolRecorder(repo)
    }

    override fun close() {
        scope.cancel()
        repo.close()
        dir.deleteRecursively()
    }
}

/** Nothing of an enrollment on [phone]: no session, no key, no device setting. */
fun assertNothingKept(phone: Phone) {
    assertNull(phone.repo.session.value)
    assertTrue(phone.keys.devices.isEmpty(), "no key")
    for (key in DEVICE_SETTINGS) assertNull(phone.settings.get(key), "$key not written")
}

/** Wait for a state that satisfies [predicate]; fails with the last state after [timeout]. */
suspend fun <T> StateFlow<T>.await(what: String, timeout: Duration = 20.seconds, predicate: (T) -> Boolean): T =
    withTimeoutOrNull(timeout) { first(predicate) } ?: fail("timed out after $timeout waiting for $what; last state: $value")

/** The photo the Python and Kotlin binding tests use. */
fun cameraPhoto(): ByteArray = File(System.getProperty("gridsync.photo")).readBytes()

/** [value], or a failure with [message] when it is null. */
fun <T : Any> present(value: T?, message: String = "expected a value"): T = value ?: fail(message)

/** Names of the files and folders the engine keeps for [deviceId] (database, journals, photos). */
fun Phone.engineFiles(deviceId: String): List<String> =
    (dir.listFiles() ?: emptyArray<File>()).map { it.name }.filter { it.startsWith("gridsync-$deviceId.db") }.sorted()

/** An IPv4 address of this machine other than loopback, to reach a relay "off the phone", or null. */
fun machineAddress(): String? = NetworkInterface.getNetworkInterfaces().asSequence()
    .filter { it.isUp && !it.isLoopback }
    .flatMap { it.inetAddresses.asSequence() }
    .filterIsInstance<Inet4Address>()
    .firstOrNull { !it.isLoopbackAddress && !it.isLinkLocalAddress }
    ?.hostAddress
