package cn.gridsync.demo.logic

import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import uniffi.gridsync_ffi.GridsyncException
import uniffi.gridsync_ffi.SyncProgress
import uniffi.gridsync_ffi.SyncSummary

/**
 * The phases of a sync, in order. [zh] is the default label; the app maps each to a
 * string resource (`sync_phase_<name in lower case>`).
 */
enum class SyncPhase(val zh: String) {
    PUSH("上传变更"),
    PULL("下载更新"),
    PHOTOS("上传照片"),
}

/** Where a running sync stands. */
data class SyncProgressUi(
    val phase: SyncPhase,
    /** Items done so far in [phase]. */
    val items: Long,
    /** Items left in [phase] (push and photos; 0 when unknown). */
    val remaining: Long,
    val bytes: Long,
    /** Items done per phase in this sync, so a finished sync still shows what it did. */
    val itemsByPhase: Map<SyncPhase, Long>,
) {
    /** Share of [phase] done, when the engine knows what is left. */
    val fraction: Float? get() = if (items + remaining > 0 && remaining > 0) items.toFloat() / (items + remaining) else null
}

/** What the last successful sync did. */
data class SyncResult(val pushed: Long, val pulled: Long, val rejected: Long, val photosUploaded: Long, val atMs: Long)

/** The sync bar: progress, the offline indicator and what is waiting to be sent. */
data class SyncState(
    val running: Boolean = false,
    val progress: SyncProgressUi? = null,
    /** No connectivity, or the last sync could not reach the server. */
    val offline: Boolean = false,
    /** Cases and patrols changed here and not yet synced. */
    val pendingCount: Int = 0,
    val lastResult: SyncResult? = null,
    val notice: Notice? = null,
    /** The server is a test server reached over plain `http://` (confirmed at enrollment). */
    val plainHttp: Boolean = false,
)

/**
 * Runs syncs and keeps the sync bar's state. Offline when the platform reports no
 * network or when a sync fails with [GridsyncException.Network]; when connectivity
 * comes back and something is pending, it syncs by itself.
 */
class SyncViewModel(
    private val repo: GridRepository,
    private val connectivity: Connectivity,
    private val scope: CoroutineScope,
    private val clock: Clock = Clock.System,
) {
    private val _state = MutableStateFlow(SyncState())
    val state: StateFlow<SyncState> = _state.asStateFlow()

    /** The sync in progress, so a second tap joins it instead of starting another. */
    private val current = AtomicReference<Job?>(null)

    @Volatile private var serverUnreachable = false

    init {
        scope.launch {
            repo.pending.collect { p -> _state.update { it.copy(pendingCount = p.size) } }
        }
        scope.launch {
            repo.session.collect { s -> _state.update { it.copy(plainHttp = s?.plainHttp == true) } }
        }
        scope.launch {
            var wasOnline = connectivity.online.value
            connectivity.online.collect { online ->
                _state.update { it.copy(offline = !online || serverUnreachable) }
                if (online && !wasOnline && repo.session.value != null && repo.pending.value.isNotEmpty()) {
                    syncNow()
                }
                wasOnline = online
            }
        }
    }

    /** Sync now (or join the sync already running). */
    fun syncNow(): Job {
        val job = scope.launch(start = CoroutineStart.LAZY) { run() }
        while (true) {
            val running = current.get()
            if (running != null && running.isActive) {
                job.cancel()
                return running
            }
            if (current.compareAndSet(running, job)) {
                job.start()
                return job
            }
        }
    }

    private suspend fun run() {
        if (!connectivity.online.value) {
            _state.update { it.copy(offline = true, notice = Notice(UiMessage.OFFLINE)) }
            return
        }
        _state.update { it.copy(running = true, progress = null, notice = null) }
        try {
            val summary = repo.sync(::onProgress)
            serverUnreachable = false
            val result = summary.toResult(clock.nowMs())
            _state.update {
                it.copy(
                    running = false,
                    offline = !connectivity.online.value,
                    // Read here too, so the bar never shows "done" next to a stale count.
                    pendingCount = repo.pending.value.size,
                    lastResult = result,
                    notice = Notice(if (result.rejected > 0) UiMessage.SYNC_REJECTED else UiMessage.SYNC_DONE),
                )
            }
        } catch (e: CancellationException) {
            _state.update { it.copy(running = false) }
            throw e
        } catch (e: GridsyncException.Network) {
            serverUnreachable = true
            _state.update { it.copy(running = false, offline = true, notice = Notice(UiMessage.OFFLINE, e.reason)) }
        } catch (e: Exception) {
            _state.update { it.copy(running = false, notice = e.toNotice()) }
        }
    }

    // Called on the sync worker thread.
    private fun onProgress(p: SyncProgress) {
        val phase = when (p.phase) {
            "push" -> SyncPhase.PUSH
            "pull" -> SyncPhase.PULL
            else -> SyncPhase.PHOTOS
        }
        _state.update { s ->
            val done = (s.progress?.itemsByPhase ?: emptyMap()).toMutableMap()
            done[phase] = maxOf(done[phase] ?: 0, p.items.toLong())
            s.copy(progress = SyncProgressUi(phase, p.items.toLong(), p.remaining.toLong(), p.bytes.toLong(), done))
        }
    }
}

private fun SyncSummary.toResult(atMs: Long) =
    SyncResult(pushed.toLong(), pulled.toLong(), rejected.toLong(), photosUploaded.toLong(), atMs)
