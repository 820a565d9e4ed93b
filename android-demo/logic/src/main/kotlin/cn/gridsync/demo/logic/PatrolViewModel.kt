package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

/** The patrol screen. */
data class PatrolState(
    /** The patrol in progress, or null. */
    val active: ActivePatrol? = null,
    /** GPS fixes recorded on the active patrol (or the last one, once ended). */
    val points: Long = 0,
    /** The last patrol ended on this screen: its point count and duration. */
    val lastEnded: EndedPatrol? = null,
    val busy: Boolean = false,
    val notice: Notice? = null,
)

/** A patrol that was just ended. */
data class EndedPatrol(val id: String, val points: Long, val durationMs: Long)

/**
 * Start and stop a patrol and record its GPS track. Commands and fixes are handled
 * one at a time, in the order they arrive, so a fix never lands after its patrol
 * ended and the track keeps the order of the fixes.
 */
class PatrolViewModel(
    private val repo: GridRepository,
    private val scope: CoroutineScope,
    private val clock: Clock = Clock.System,
) {
    private val _state = MutableStateFlow(PatrolState())
    val state: StateFlow<PatrolState> = _state.asStateFlow()

    private sealed interface Command {
        val done: CompletableDeferred<Unit>
        class Start(override val done: CompletableDeferred<Unit> = CompletableDeferred()) : Command
        class Fix(val point: GeoPoint, override val done: CompletableDeferred<Unit> = CompletableDeferred()) : Command
        class Stop(override val done: CompletableDeferred<Unit> = CompletableDeferred()) : Command
    }

    private val commands = Channel<Command>(Channel.UNLIMITED)

    init {
        scope.launch {
            repo.activePatrol.collect { patrol ->
                val points = patrol?.let { runCatching { repo.patrolTrackLength(it.id) }.getOrNull() } ?: 0
                _state.update { if (it.active?.id == patrol?.id) it.copy(active = patrol) else it.copy(active = patrol, points = points) }
            }
        }
        scope.launch {
            for (command in commands) {
                try {
                    handle(command)
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Exception) {
                    _state.update { it.copy(notice = e.toNotice()) }
                } finally {
                    _state.update { it.copy(busy = false) }
                    command.done.complete(Unit)
                }
            }
        }
    }

    private suspend fun handle(command: Command) {
        when (command) {
            is Command.Start -> {
                if (repo.activePatrol.value != null) return
                _state.update { it.copy(busy = true) }
                val patrol = repo.startPatrol()
                _state.update { it.copy(active = patrol, points = 0, notice = Notice(UiMessage.PATROL_STARTED)) }
            }
            is Command.Fix -> {
                // Fixes outside a patrol are not recorded (the report form keeps its own).
                val patrol = repo.activePatrol.value ?: return
                repo.addTrackPoints(patrol.id, listOf(command.point))
                _state.update { it.copy(points = it.points + 1) }
            }
            is Command.Stop -> {
                val patrol = repo.activePatrol.value
                if (patrol == null) {
                    _state.update { it.copy(notice = Notice(UiMessage.NO_ACTIVE_PATROL)) }
                    return
                }
                _state.update { it.copy(busy = true) }
                repo.endPatrol(patrol.id)
                val points = repo.patrolTrackLength(patrol.id)
                val ended = EndedPatrol(patrol.id, points, clock.nowMs() - patrol.startedAtMs)
                _state.update { it.copy(active = null, points = points, lastEnded = ended, notice = Notice(UiMessage.PATROL_ENDED)) }
            }
        }
    }

    /** Start a patrol (nothing if one is in progress). Completes when it is stored. */
    fun start(): Job = send(Command.Start())

    /** A fix from the platform; recorded on the active patrol. Safe from any thread. */
    fun onLocation(point: GeoPoint): Job = send(Command.Fix(point))

    /** End the active patrol after the fixes sent before this call are recorded. */
    fun stop(): Job = send(Command.Stop())

    private fun send(command: Command): Job {
        commands.trySend(command)
        return command.done
    }
}
