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
    /** GPS fixes of the active patrol, held or written (or of the last one, once ended). */
    val points: Long = 0,
    /** Of [points], the fixes held by the recorder and not yet written. */
    val buffered: Int = 0,
    /** The last patrol ended on this screen: its point count and duration. */
    val lastEnded: EndedPatrol? = null,
    val busy: Boolean = false,
    val notice: Notice? = null,
)

/** A patrol that was just ended. */
data class EndedPatrol(val id: String, val points: Long, val durationMs: Long)

/**
 * Start and stop a patrol. The track itself is recorded by the [PatrolRecorder]
 * (fed by the foreground location service on Android, which the app starts while
 * [PatrolState.active] is set); this screen shows its counts and ends the patrol
 * through it, so the fixes it holds are written first. Commands are handled one at
 * a time, in the order they arrive.
 */
class PatrolViewModel(
    private val repo: GridRepository,
    private val recorder: PatrolRecorder,
    private val scope: CoroutineScope,
) {
    private val _state = MutableStateFlow(PatrolState())
    val state: StateFlow<PatrolState> = _state.asStateFlow()

    private sealed interface Command {
        val done: CompletableDeferred<Unit>
        class Start(override val done: CompletableDeferred<Unit> = CompletableDeferred()) : Command
        class Stop(override val done: CompletableDeferred<Unit> = CompletableDeferred()) : Command
    }

    private val commands = Channel<Command>(Channel.UNLIMITED)

    init {
        scope.launch {
            repo.activePatrol.collect { patrol ->
                _state.update { it.copy(active = patrol) }
                // The recorder re-reads the count of a patrol it has not seen (a restart).
                runCatching { recorder.refresh() }
            }
        }
        scope.launch {
            recorder.track.collect { track ->
                _state.update { s ->
                    if (track.patrolId != null && track.patrolId == s.active?.id) {
                        s.copy(points = track.points, buffered = track.buffered)
                    } else {
                        s
                    }
                }
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
                _state.update { it.copy(active = patrol, points = 0, buffered = 0, notice = Notice(UiMessage.PATROL_STARTED)) }
            }
            is Command.Stop -> {
                if (repo.activePatrol.value == null) {
                    _state.update { it.copy(notice = Notice(UiMessage.NO_ACTIVE_PATROL)) }
                    return
                }
                _state.update { it.copy(busy = true) }
                val ended = recorder.endPatrol() ?: return
                _state.update {
                    it.copy(active = null, points = ended.points, buffered = 0, lastEnded = ended, notice = Notice(UiMessage.PATROL_ENDED))
                }
            }
        }
    }

    /** Start a patrol (nothing if one is in progress). Completes when it is stored. */
    fun start(): Job = send(Command.Start())

    /** End the active patrol after the fixes the recorder holds are written. */
    fun stop(): Job = send(Command.Stop())

    private fun send(command: Command): Job {
        commands.trySend(command)
        return command.done
    }
}
