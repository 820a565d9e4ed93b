package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

/** This device, and the 退出并清除 action. */
data class DeviceState(
    /** The enrolled device (user, device id, server, whether it is plain HTTP). */
    val session: Session? = null,
    /** Cases and patrols changed here and not yet synced: lost by an erase. */
    val pendingCount: Int = 0,
    val busy: Boolean = false,
    val notice: Notice? = null,
)

/**
 * 退出并清除: the user leaves this phone (a worker hands it over). The app asks for
 * confirmation first, saying how many changes are not synced; then
 * [GridRepository.signOutAndErase] erases the database and photos, deletes the key
 * and the settings, cancels background sync, and the app shows enrollment.
 */
class DeviceViewModel(private val repo: GridRepository, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(DeviceState())
    val state: StateFlow<DeviceState> = _state.asStateFlow()

    init {
        // One collector: the warning never counts changes of a device it does not show.
        scope.launch {
            combine(repo.session, repo.pending) { s, p -> s to p.size }
                .collect { (s, n) -> _state.update { it.copy(session = s, pendingCount = n) } }
        }
    }

    /** Erase everything of this device on this phone and return to enrollment. */
    fun signOutAndErase(): Job = scope.launch {
        if (_state.value.busy) return@launch
        _state.update { it.copy(busy = true, notice = null) }
        val notice = try {
            repo.signOutAndErase()
            null
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            e.toNotice()
        }
        _state.update { it.copy(busy = false, notice = notice) }
    }
}
