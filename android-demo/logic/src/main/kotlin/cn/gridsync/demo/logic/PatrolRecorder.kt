package cn.gridsync.demo.logic

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/** The track of the patrol in progress, as the patrol screen shows it. */
data class TrackState(
    /** The patrol these counts belong to, or null when none is running. */
    val patrolId: String? = null,
    /** Fixes written to the engine. */
    val recorded: Long = 0,
    /** Fixes held here, not yet written (at most one batch). */
    val buffered: Int = 0,
) {
    /** Every fix of the patrol so far. */
    val points: Long get() = recorded + buffered
}

/**
 * Records GPS fixes on the patrol in progress, in batches: one process-wide
 * instance, fed by the foreground location service on Android
 * (`app/…/platform/PatrolLocationService.kt`) and ended from the patrol screen.
 *
 * A fix is held until [batchSize] fixes are waiting or the oldest has waited
 * [maxDelayMs]; then they are written with one `addTrackPoints` (the engine keeps
 * them durably from there). [flush] writes what is held (the service calls it when
 * it stops), and [endPatrol] writes it before the patrol ends, so no fix lands after
 * its patrol ended. A process killed in between loses at most the fixes held.
 * Fixes outside a patrol are dropped: the report form takes its own.
 *
 * Calls are serialised; a failed write keeps its fixes for the next one.
 */
class PatrolRecorder(
    private val repo: GridRepository,
    private val batchSize: Int = 10,
    private val maxDelayMs: Long = 30_000,
    private val clock: Clock = Clock.System,
) {
    private val lock = Mutex()
    private val held = ArrayList<GeoPoint>()
    private var heldSinceMs = 0L

    private val _track = MutableStateFlow(TrackState())
    /** Counts for the patrol in progress. */
    val track: StateFlow<TrackState> = _track.asStateFlow()

    private val _lastFix = MutableStateFlow<GeoPoint?>(null)
    /** The latest fix from the platform, patrol or not (personal data: never logged). */
    val lastFix: StateFlow<GeoPoint?> = _lastFix.asStateFlow()

    /** A fix from the platform: held for the patrol in progress, written in batches. */
    suspend fun onFix(point: GeoPoint) {
        _lastFix.value = point
        lock.withLock {
            val patrol = follow() ?: return
            if (held.isEmpty()) heldSinceMs = clock.nowMs()
            held += point
            if (held.size > MAX_HELD) held.subList(0, held.size - MAX_HELD).clear()
            publish(patrol)
            if (held.size >= batchSize || clock.nowMs() - heldSinceMs >= maxDelayMs) write(patrol)
        }
    }

    /** Write the fixes held now (the service is stopping, or the app leaves the screen). */
    suspend fun flush() = lock.withLock {
        follow()?.let { write(it) }
    }

    /** Re-read the counts of the patrol in progress (after a restart, or a new patrol). */
    suspend fun refresh() = lock.withLock {
        follow()
        Unit
    }

    /**
     * Write the fixes held, then end the patrol in progress; null when there is none.
     * If the fixes cannot be written the patrol stays open and this throws.
     */
    suspend fun endPatrol(): EndedPatrol? = lock.withLock {
        val patrol = follow() ?: return null
        write(patrol)
        repo.endPatrol(patrol.id)
        val points = repo.patrolTrackLength(patrol.id)
        _track.value = TrackState()
        EndedPatrol(patrol.id, points, clock.nowMs() - patrol.startedAtMs)
    }

    /**
     * The patrol in progress, with [held] and [track] reset when it is not the one
     * they belonged to (a new patrol, or the device was erased).
     */
    private suspend fun follow(): ActivePatrol? {
        val patrol = repo.activePatrol.value
        if (patrol?.id != _track.value.patrolId) {
            held.clear()
            _track.value = if (patrol == null) TrackState() else TrackState(patrol.id, repo.patrolTrackLength(patrol.id))
        }
        return patrol
    }

    private suspend fun write(patrol: ActivePatrol) {
        if (held.isEmpty()) return
        val batch = held.toList()
        repo.addTrackPoints(patrol.id, batch)
        held.clear()
        _track.value = TrackState(patrol.id, _track.value.recorded + batch.size, 0)
    }

    private fun publish(patrol: ActivePatrol) {
        _track.value = _track.value.copy(patrolId = patrol.id, buffered = held.size)
    }

    private companion object {
        /** Fixes kept while writes fail (about seven hours at one fix every 5 s). */
        const val MAX_HELD = 5_000
    }
}
