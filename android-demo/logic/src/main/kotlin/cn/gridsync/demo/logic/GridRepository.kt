package cn.gridsync.demo.logic

import java.io.File
import java.security.SecureRandom
import java.time.YearMonth
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import uniffi.gridsync_ffi.CaseFilterRecord
import uniffi.gridsync_ffi.CaseRecord
import uniffi.gridsync_ffi.CaseSummaryRecord
import uniffi.gridsync_ffi.DirectoryRecord
import uniffi.gridsync_ffi.DocumentsObserver
import uniffi.gridsync_ffi.GridEngine
import uniffi.gridsync_ffi.GridsyncException
import uniffi.gridsync_ffi.NewCaseRecord
import uniffi.gridsync_ffi.PhotoRecord
import uniffi.gridsync_ffi.PointsAdjustmentRecord
import uniffi.gridsync_ffi.ServerSecurityRecord
import uniffi.gridsync_ffi.SyncObserver
import uniffi.gridsync_ffi.SyncProgress
import uniffi.gridsync_ffi.SyncSummary
import uniffi.gridsync_ffi.TrackPointRecord
import uniffi.gridsync_ffi.WatchHandle
import uniffi.gridsync_ffi.WorkerPointsRecord
import uniffi.gridsync_ffi.enroll as redeemCode
import uniffi.gridsync_ffi.newDeviceId

/**
 * Who this device is: enough to reopen its database after a restart. [plainHttp] is
 * true when the user confirmed at enrollment that [serverUrl] is a test server
 * reached over plain `http://` (see [ServerAddress]).
 */
data class Session(val userId: String, val deviceId: String, val serverUrl: String, val plainHttp: Boolean = false)

/** Why this device's data was erased and the app is back at enrollment. */
enum class EraseCause {
    /** The command centre revoked the device; the engine erased its data at the next sync. */
    REVOKED,

    /** The user chose 退出并清除 on this phone. */
    SIGNED_OUT,
}

/** The directory this device holds (regions, staff, categories, points rules). */
data class LoadedDirectory(val record: DirectoryRecord) {
    /** Whether the town awards points (积分). */
    val awardsPoints: Boolean get() = record.pointsRules != null

    /** The role code (`grid_worker`, …) of [userId], or null when the directory does not know her. */
    fun roleOf(userId: String): String? = record.users.firstOrNull { it.id == userId }?.role
}

private fun GridEngine.loadedDirectory() = LoadedDirectory(directory())

/** The patrol in progress, kept in settings so a restart resumes it. */
data class ActivePatrol(val id: String, val startedAtMs: Long)

/**
 * What the last committed write touched. [revision] grows with every notification,
 * so collectors re-read even when the same documents change twice.
 */
data class Changes(val revision: Long = 0, val docIds: List<String> = emptyList())

/**
 * The one owner of the [GridEngine] in the app. Every engine call runs on [io] (the
 * engine's local calls block on SQLite); state the screens follow is exposed as
 * StateFlows. Created once per process (the Application on Android).
 *
 * The database is encrypted under the device's 32-byte root key, made at enrollment
 * and kept in [keys] (the Android Keystore on the phone), never in [settings].
 *
 * "Pending" is this app's own record of documents it changed locally that have not
 * been followed by a successful sync yet: the bindings expose no outbox count.
 *
 * Erasing has one path, [forget]: after a sync (in the foreground or from the
 * background worker) answers `Wiped`, and after the user's [signOutAndErase], the
 * key is deleted from [keys], the settings are cleared, background sync is
 * cancelled and [session] becomes null, so the app shows enrollment.
 */
class GridRepository(
    private val dataDir: File,
    private val settings: SettingsStore,
    private val keys: KeyStore,
    private val io: CoroutineDispatcher,
    private val appVersion: String,
    private val scheduler: SyncScheduler = SyncScheduler.None,
    private val clock: Clock = Clock.System,
) : AutoCloseable {
    private val openLock = Mutex()
    /** One sync at a time: the sync bar and the background worker share the engine. */
    private val syncLock = Mutex()
    @Volatile private var engine: GridEngine? = null
    @Volatile private var watchHandle: WatchHandle? = null

    private val _session = MutableStateFlow<Session?>(null)
    /** The enrolled device, or null before enrollment (and before [restore]). */
    val session: StateFlow<Session?> = _session.asStateFlow()

    private val _changes = MutableStateFlow(Changes())
    /** Documents changed: local edits, pulled changes, purges (from `GridEngine.watch`). */
    val changes: StateFlow<Changes> = _changes.asStateFlow()

    private val localWrite = ThreadLocal.withInitial { false }
    private val pendingLock = Any()
    private var writeGeneration = 0L
    private val pendingGenerations = HashMap<String, Long>()
    private val _pending = MutableStateFlow<Set<String>>(emptySet())
    /** Ids of cases and patrols changed here since the last successful sync. */
    val pending: StateFlow<Set<String>> = _pending.asStateFlow()

    private val _erased = MutableStateFlow(settings.get(KEY_ERASED)?.let { v -> EraseCause.entries.firstOrNull { it.name == v } })
    /**
     * Why this device's data was last erased (the session, settings and key are
     * gone, and the app is back at enrollment), or null. Kept in settings, so the
     * enrollment screen can say why even when the erase happened in the background
     * worker and the process ended since; null again after the next enrollment.
     */
    val erased: StateFlow<EraseCause?> = _erased.asStateFlow()

    private val _directory = MutableStateFlow<LoadedDirectory?>(null)

    /**
     * The directory this device holds: read when the database opens and again after
     * a sync that brought a newer one.
     */
    val directory: StateFlow<LoadedDirectory?> = _directory.asStateFlow()

    private val _activePatrol = MutableStateFlow<ActivePatrol?>(null)
    /** The patrol in progress on this device, if any. */
    val activePatrol: StateFlow<ActivePatrol?> = _activePatrol.asStateFlow()

    /** Reopen the database of a device enrolled before; null when there is none. */
    suspend fun restore(): Session? = openLock.withLock {
        _session.value?.let { return it }
        withContext(io) {
            val user = settings.get(KEY_USER) ?: return@withContext null
            val device = settings.get(KEY_DEVICE) ?: return@withContext null
            val url = settings.get(KEY_SERVER) ?: return@withContext null
            attach(openWithKey(device, user))
            synchronized(pendingLock) {
                settings.get(KEY_PENDING)?.split(',')?.filter { it.isNotEmpty() }?.forEach {
                    pendingGenerations[it] = 0
                }
                _pending.value = pendingGenerations.keys.toSet()
            }
            _activePatrol.value = settings.get(KEY_PATROL)?.split('|')?.takeIf { it.size == 2 }
                ?.let { (id, at) -> ActivePatrol(id, at.toLongOrNull() ?: 0L) }
            // The engine keeps its own copy of the plain-HTTP choice (set at
            // enrollment); this one is for the screens.
            Session(user, device, url, plainHttp = settings.get(KEY_PLAIN_HTTP) == "1")
        }?.also {
            _session.value = it
            scheduler.schedulePeriodic()
        }
    }

    /**
     * Redeem a one-time [code] with the server at [serverUrl], create this device's
     * database, load the directory, remember the server, and persist who we are.
     *
     * [allowPlainHttp] lets the core use plain `http://` to a server that is not on
     * this phone, for enrollment and every later sync (`setServerSecurity`, kept in
     * the engine's database). Only [EnrollViewModel] decides it, after the user
     * confirmed a [ServerAddress.PlainHttpLocal] address is a test server.
     */
    suspend fun enroll(serverUrl: String, code: String, allowPlainHttp: Boolean = false): Session = openLock.withLock {
        val deviceId = newDeviceId()
        val security = if (allowPlainHttp) ServerSecurityRecord(caPem = null, allowPlainHttp = true) else null
        val enrollment = redeemCode(serverUrl, code, deviceId, appVersion, security)
        withContext(io) {
            // The key is stored before the database exists: a database is never
            // written under a key the app might not have kept.
            val key = newKey()
            keys.save(deviceId, key)
            val opened = try {
                GridEngine.open(dbFile(deviceId).path, enrollment.user, deviceId, key)
            } catch (e: Throwable) {
                keys.delete(deviceId)
                throw e
            } finally {
                key.fill(0)
            }
            try {
                opened.loadDirectory(enrollment.directoryJson)
                // Before the server: the engine never holds a server it may not reach.
                security?.let { opened.setServerSecurity(it) }
                opened.setServer(serverUrl, enrollment.token)
            } catch (e: Throwable) {
                opened.closeStore()
                opened.close()
                // Nothing of this device is remembered, so its file holds no work;
                // without the key it is only unreadable bytes.
                keys.delete(deviceId)
                throw e
            }
            detach()
            attach(opened)
            // Written last: a crash before this leaves no half-enrolled device behind.
            settings.put(KEY_SERVER, serverUrl)
            settings.put(KEY_PLAIN_HTTP, if (allowPlainHttp) "1" else null)
            settings.put(KEY_DEVICE, deviceId)
            settings.put(KEY_USER, enrollment.user)
            settings.put(KEY_PATROL, null)
            settings.put(KEY_ERASED, null)
            synchronized(pendingLock) {
                pendingGenerations.clear()
                publishPending()
            }
            _activePatrol.value = null
            _erased.value = null
        }
        scheduler.schedulePeriodic()
        Session(enrollment.user, deviceId, serverUrl, allowPlainHttp).also { _session.value = it }
    }

    private fun dbFile(deviceId: String) = File(dataDir.apply { mkdirs() }, "gridsync-$deviceId.db")

    /**
     * Open the database of an enrolled device with its key. A device enrolled before
     * the database was encrypted has no key yet: one is made, and this open encrypts
     * its plaintext database under it. `GridsyncException.WrongKey` means the key
     * kept here is not the database's (the keystore lost it): the file is left as it
     * is and the user enrolls again.
     */
    private fun openWithKey(deviceId: String, userId: String): GridEngine {
        val kept = keys.load(deviceId)
        val key = kept ?: newKey().also { keys.save(deviceId, it) }
        try {
            return GridEngine.open(dbFile(deviceId).path, userId, deviceId, key)
        } catch (e: GridsyncException.WrongKey) {
            // A key made just now cannot be this database's: do not keep it.
            if (kept == null) keys.delete(deviceId)
            throw e
        } finally {
            key.fill(0)
        }
    }

    private fun attach(opened: GridEngine) {
        engine = opened
        _directory.value = opened.loadedDirectory()
        watchHandle = opened.watch(object : DocumentsObserver {
            // Runs on the committing thread: the caller of a local edit (inside [write]
            // here, so its documents are marked pending before anyone re-reads), or the
            // sync worker. Only bookkeeping and publishing; never call back in here.
            override fun onDocumentsChanged(docIds: List<String>) {
                if (localWrite.get()) markPending(docIds)
                _changes.update { Changes(it.revision + 1, docIds) }
            }
        })
    }

    private fun detach() {
        watchHandle?.close()
        watchHandle = null
        engine?.let {
            it.closeStore()
            it.close()
        }
        engine = null
        _directory.value = null
    }

    private fun requireEngine(): GridEngine = engine ?: throw NotEnrolledException()

    /** Run [block] on [io]: engine calls and settings writes block on the disk. */
    private suspend fun <T> call(block: (GridEngine) -> T): T {
        val e = requireEngine()
        return withContext(io) { block(e) }
    }

    /** Like [call], for a local edit: what it commits is pending until the next sync. */
    private suspend fun <T> write(block: (GridEngine) -> T): T = call { e ->
        localWrite.set(true)
        try {
            block(e)
        } finally {
            localWrite.set(false)
        }
    }

    private fun markPending(docIds: List<String>) = synchronized(pendingLock) {
        val generation = ++writeGeneration
        docIds.forEach { pendingGenerations[it] = generation }
        publishPending()
    }

    private fun publishPending() {
        val ids = pendingGenerations.keys.toSet()
        _pending.value = ids
        settings.put(KEY_PENDING, ids.joinToString(",").ifEmpty { null })
    }

    /** Cases from the local index, newest first; [text] searches (two-character Chinese works). */
    suspend fun listCases(text: String?, limit: Int = 200): List<CaseSummaryRecord> =
        call { it.listCases(CaseFilterRecord(emptyList(), text?.trim()?.ifEmpty { null }, limit.toUInt())) }

    /** One case with its timeline. */
    suspend fun getCase(caseId: String): CaseRecord = call { it.getCase(caseId) }

    /**
     * This user's points (积分) for [month] (China time), or null when she has none:
     * nothing earned that month, no points rules, or she is not a grid worker.
     */
    suspend fun myPoints(month: YearMonth): WorkerPointsRecord? {
        val me = _session.value?.userId ?: throw NotEnrolledException()
        return call { it.points(null, month.year, month.monthValue.toUInt()) }.firstOrNull { it.worker == me }
    }

    /** The leaders' adjustments to this user's points for [month], oldest first. */
    suspend fun myPointsAdjustments(month: YearMonth): List<PointsAdjustmentRecord> {
        val me = _session.value?.userId ?: throw NotEnrolledException()
        return call { it.pointsAdjustments(null, month.year, month.monthValue.toUInt()) }.filter { it.worker == me }
    }

    /** Run a camera photo through the engine's capture pipeline (EXIF stripped, resized). */
    suspend fun ingestPhoto(bytes: ByteArray, fileName: String?): PhotoRecord =
        call { it.ingestPhoto(bytes, fileName) }

    /** The bytes of a stored photo (display image or thumbnail). */
    suspend fun photoBytes(hash: String): ByteArray = call { it.photoBytes(hash) }

    /** Report a case; it is durable when this returns, and a background sync is asked for. */
    suspend fun reportCase(case: NewCaseRecord): String =
        write { it.reportCase(case).also { id -> markPending(listOf(id)) } }
            .also { scheduler.syncSoon() }

    /** Start a patrol and remember it across restarts. */
    suspend fun startPatrol(): ActivePatrol = write {
        val id = it.startPatrol()
        markPending(listOf(id))
        val patrol = ActivePatrol(id, clock.nowMs())
        settings.put(KEY_PATROL, "${patrol.id}|${patrol.startedAtMs}")
        _activePatrol.value = patrol
        patrol
    }

    /**
     * Record fixes on a running patrol. The engine buffers them durably and writes
     * them into the patrol document in chunks, so not every call notifies watchers:
     * the patrol is marked pending here as well.
     */
    suspend fun addTrackPoints(patrolId: String, points: List<GeoPoint>) = write { e ->
        e.addTrackPoints(patrolId, points.map { TrackPointRecord(it.atMs, it.lat, it.lon) })
        markPending(listOf(patrolId))
    }

    /** Points recorded on a patrol so far. */
    suspend fun patrolTrackLength(patrolId: String): Long = call { it.patrolTrackLen(patrolId).toLong() }

    /** End a patrol; a background sync is asked for. Fixes go through [PatrolRecorder.endPatrol]. */
    suspend fun endPatrol(patrolId: String) {
        write {
            it.endPatrol(patrolId)
            markPending(listOf(patrolId))
            settings.put(KEY_PATROL, null)
            _activePatrol.value = null
        }
        scheduler.syncSoon()
    }

    /**
     * Push, pull and upload photos. [onProgress] is called on the sync worker thread.
     * On success, everything written before the sync started is no longer pending.
     */
    suspend fun sync(onProgress: (SyncProgress) -> Unit): SyncSummary = syncLock.withLock {
        val e = requireEngine()
        val mark = synchronized(pendingLock) { writeGeneration }
        val summary = try {
            withContext(io) {
                e.sync(object : SyncObserver {
                    override fun onProgress(progress: SyncProgress) = onProgress(progress)
                })
            }
        } catch (wiped: GridsyncException.Wiped) {
            // The engine has already erased its database and photos. (Unless the user
            // erased it meanwhile: then that engine is no longer this device's.)
            openLock.withLock { if (engine === e) withContext(io) { forget(EraseCause.REVOKED) } }
            throw wiped
        }
        withContext(io) {
            synchronized(pendingLock) {
                pendingGenerations.values.removeIf { it <= mark }
                publishPending()
            }
        }
        if (summary.directoryUpdated) _directory.value = withContext(io) { e.loadedDirectory() }
        summary
    }

    /**
     * 退出并清除: erase this device's database, journals and photos (`GridEngine.wipe`),
     * then forget it as after a remote wipe. What was not synced is lost; the screen
     * asking for this says so. If the engine cannot erase its files, they are deleted
     * here by name, and in any case the key goes, so what might remain is ciphertext
     * nobody can read.
     */
    suspend fun signOutAndErase() = openLock.withLock {
        val e = requireEngine()
        val device = settings.get(KEY_DEVICE)
        withContext(io) {
            watchHandle?.close()
            watchHandle = null
            val erased = try {
                e.wipe()
                true
            } catch (already: GridsyncException.Wiped) {
                true
            } catch (failed: GridsyncException) {
                false
            }
            if (!erased && device != null) {
                dataDir.listFiles()?.filter { it.name.startsWith(dbFile(device).name) }?.forEach { it.deleteRecursively() }
            }
            forget(EraseCause.SIGNED_OUT)
        }
    }

    /**
     * The one erase path (the caller holds [openLock], on [io]): the engine's files
     * are gone; forget the key, which could only open what is gone, who this device
     * was and its bookkeeping, stop background sync, and go back to enrollment.
     */
    private fun forget(cause: EraseCause) {
        val device = settings.get(KEY_DEVICE)
        detach()
        device?.let { keys.delete(it) }
        DEVICE_KEYS.forEach { settings.put(it, null) }
        settings.put(KEY_ERASED, cause.name)
        synchronized(pendingLock) {
            pendingGenerations.clear()
            _pending.value = emptySet()
        }
        _activePatrol.value = null
        _erased.value = cause
        _session.value = null
        scheduler.cancel()
    }

    /** Stop watching and close the database (the app is going away, or a test ends). */
    override fun close() {
        detach()
        _session.value = null
    }

    private companion object {
        private val random = SecureRandom()

        /** A fresh device root key. */
        fun newKey(): ByteArray = ByteArray(32).also { random.nextBytes(it) }

        const val KEY_USER = "gridsync.user"
        const val KEY_DEVICE = "gridsync.device"
        const val KEY_SERVER = "gridsync.server"
        const val KEY_PLAIN_HTTP = "gridsync.server.plain_http"
        const val KEY_PENDING = "gridsync.pending"
        const val KEY_PATROL = "gridsync.patrol"
        const val KEY_ERASED = "gridsync.erased"

        /** Everything settings hold about the enrolled device (the token is in the engine). */
        val DEVICE_KEYS = listOf(KEY_USER, KEY_DEVICE, KEY_SERVER, KEY_PLAIN_HTTP, KEY_PENDING, KEY_PATROL)
    }
}
