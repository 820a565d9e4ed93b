package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import uniffi.gridsync_ffi.GridsyncException

/** The enrollment form. */
data class EnrollState(
    val serverUrl: String = "",
    val code: String = "",
    val busy: Boolean = false,
    val notice: Notice? = null,
    /** Set once this device is enrolled (now or before a restart). */
    val session: Session? = null,
)

/**
 * Enroll with a server URL and a one-time code from the command centre
 * (`gridsync admin enroll --user …`). On start it reopens a device enrolled before;
 * after a remote wipe it is the screen the app returns to.
 */
class EnrollViewModel(private val repo: GridRepository, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(EnrollState())
    val state: StateFlow<EnrollState> = _state.asStateFlow()

    init {
        scope.launch {
            repo.session.collect { s -> _state.update { it.copy(session = s) } }
        }
        // A wipe ends the session from a sync: say why the form is back.
        scope.launch {
            repo.wiped.collect { wiped -> if (wiped) _state.update { it.copy(notice = Notice(UiMessage.DEVICE_WIPED)) } }
        }
    }

    fun onServerUrlChange(value: String) = _state.update { it.copy(serverUrl = value, notice = null) }

    fun onCodeChange(value: String) = _state.update { it.copy(code = value, notice = null) }

    /** Reopen the database of an earlier enrollment, if there is one. */
    fun restore(): Job = scope.launch {
        _state.update { it.copy(busy = true) }
        val notice = try {
            repo.restore()
            null
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            e.toNotice()
        }
        _state.update { it.copy(busy = false, notice = notice) }
    }

    /** Validate the form and redeem the code. */
    fun submit(): Job = scope.launch {
        val form = _state.value
        if (form.busy) return@launch
        val url = form.serverUrl.trim().trimEnd('/')
        // Codes are shown in groups on paper; the server ignores case.
        val code = form.code.filterNot { it.isWhitespace() || it == '-' }
        val invalid = when {
            url.isEmpty() -> UiMessage.SERVER_URL_REQUIRED
            !(url.startsWith("http://") || url.startsWith("https://")) -> UiMessage.SERVER_URL_INVALID
            code.isEmpty() -> UiMessage.CODE_REQUIRED
            else -> null
        }
        if (invalid != null) {
            _state.update { it.copy(notice = Notice(invalid)) }
            return@launch
        }
        _state.update { it.copy(busy = true, notice = null) }
        val notice = try {
            repo.enroll(url, code)
            Notice(UiMessage.ENROLLED)
        } catch (e: CancellationException) {
            throw e
        } catch (e: GridsyncException.Unauthorized) {
            Notice(UiMessage.CODE_REJECTED, e.reason)
        } catch (e: Exception) {
            e.toNotice()
        }
        _state.update { it.copy(busy = false, notice = notice, code = if (notice.message == UiMessage.ENROLLED) "" else it.code) }
    }
}
