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
import uniffi.gridsync_ffi.parseEnrollmentLink

/** The enrollment form. */
data class EnrollState(
    val serverUrl: String = "",
    val code: String = "",
    val busy: Boolean = false,
    val notice: Notice? = null,
    /** Set once this device is enrolled (now or before a restart). */
    val session: Session? = null,
    /**
     * A plain `http://` address to this phone, the emulator's host or the LAN,
     * waiting for the user to confirm it is a test server (the app shows a dialog
     * while this is set); see [EnrollViewModel.confirmPlainHttp].
     */
    val confirmPlainHttp: String? = null,
    /** The plain `http://` address the user confirmed; cleared when the address changes. */
    val plainHttpConfirmedFor: String? = null,
    /** The camera scanner is open ([EnrollViewModel.startScan]); an enrollment link closes it. */
    val scanning: Boolean = false,
)

/**
 * Enroll with a server URL and a one-time code from the command centre
 * (`gridsync admin enroll --user …`). On start it reopens a device enrolled before;
 * after an erase (remote wipe, or 退出并清除) it is the screen the app returns to.
 *
 * The address decides the transport ([ServerAddress]): `https://` enrolls at once;
 * plain `http://` to this phone, the emulator's host or a private LAN address asks
 * first ([EnrollState.confirmPlainHttp]) and, once confirmed, enrolls with plain HTTP
 * allowed for that server; plain `http://` anywhere else is refused.
 */
class EnrollViewModel(private val repo: GridRepository, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(EnrollState())
    val state: StateFlow<EnrollState> = _state.asStateFlow()

    init {
        // An erase ends the session (from a sync, the background worker, or the
        // user): say why the form is back. The repository records the cause before
        // it ends the session, so the form never comes back with an older notice.
        scope.launch {
            repo.session.collect { s ->
                val cause = if (s == null) repo.erased.value else null
                _state.update { if (cause != null) it.erasedBy(cause).copy(session = null) else it.copy(session = s) }
            }
        }
        scope.launch {
            repo.erased.collect { cause -> if (cause != null) _state.update { it.erasedBy(cause) } }
        }
    }

    // A new device: a plain-HTTP server is confirmed again.
    private fun EnrollState.erasedBy(cause: EraseCause) = copy(
        notice = Notice(
            when (cause) {
                EraseCause.REVOKED -> UiMessage.DEVICE_WIPED
                EraseCause.SIGNED_OUT -> UiMessage.SIGNED_OUT_ERASED
            },
        ),
        plainHttpConfirmedFor = null,
    )

    private val qr = QrDecoder()

    fun onServerUrlChange(value: String) = _state.update { it.withServerUrl(value) }

    fun onCodeChange(value: String) = _state.update { it.copy(code = value, notice = null) }

    /**
     * A QR code scanned from the command centre's sheet (the console's 设备注册码
     * page): it carries the server's address and the code in one link. Both fill the
     * form (and close the scanner); the worker sees which server it names and submits it herself (a forged
     * sheet must not send her code somewhere unseen). Anything else scanned is
     * refused with a message, the form left as it was.
     */
    fun onScanned(text: String) {
        val link = try {
            parseEnrollmentLink(text)
        } catch (e: GridsyncException.InvalidInput) {
            _state.update { it.copy(notice = Notice(UiMessage.QR_NOT_ENROLLMENT, e.reason)) }
            return
        }
        _state.update { it.withServerUrl(link.serverUrl).copy(code = link.code, scanning = false) }
    }

    /** Open the camera scanner: the app shows it while [EnrollState.scanning]. */
    fun startScan() = _state.update { it.copy(scanning = true, notice = null) }

    /** Close the scanner without a link; the form stays as it was. */
    fun cancelScan() = _state.update { it.copy(scanning = false, notice = null) }

    /**
     * One camera frame while the scanner is open, on the camera's analysis thread.
     * A frame with no readable QR code changes nothing (the next frame comes a moment
     * later); a QR code is read as in [onScanned]: an enrollment link fills the form
     * and closes the scanner, any other code says so and the scanner stays open.
     */
    fun onFrame(frame: LuminanceFrame) {
        if (!_state.value.scanning) return
        qr.decode(frame)?.let(::onScanned)
    }

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
        // Nothing to restore keeps the notice of an erase (why the form is shown).
        _state.update { it.copy(busy = false, notice = notice ?: it.notice) }
    }

    /**
     * Validate the form and redeem the code; for a local plain `http://` address not
     * yet confirmed, ask instead ([EnrollState.confirmPlainHttp]).
     */
    fun submit(): Job = scope.launch {
        val form = _state.value
        if (form.busy || form.confirmPlainHttp != null) return@launch
        val address = ServerAddress.parse(form.serverUrl)
        // Codes are shown in groups on paper; the server ignores case.
        val code = form.code.filterNot { it.isWhitespace() || it == '-' }
        val invalid = when {
            form.serverUrl.isBlank() -> UiMessage.SERVER_URL_REQUIRED
            address is ServerAddress.Invalid -> UiMessage.SERVER_URL_INVALID
            address is ServerAddress.PlainHttpPublic -> UiMessage.PLAIN_HTTP_REFUSED
            code.isEmpty() -> UiMessage.CODE_REQUIRED
            else -> null
        }
        if (invalid != null) {
            _state.update { it.copy(notice = Notice(invalid)) }
            return@launch
        }
        val plainHttp = address is ServerAddress.PlainHttpLocal
        if (plainHttp && form.plainHttpConfirmedFor != address.url) {
            _state.update { it.copy(confirmPlainHttp = address.url, notice = null) }
            return@launch
        }
        enroll(address.url, code, plainHttp)
    }

    /** The user confirmed the plain `http://` address is a test server: enroll with it. */
    fun confirmPlainHttp(): Job {
        val url = _state.value.confirmPlainHttp ?: return scope.launch { }
        _state.update { it.copy(confirmPlainHttp = null, plainHttpConfirmedFor = url) }
        return submit()
    }

    /** The user declined: nothing is sent, the form stays as typed. */
    fun cancelPlainHttp() = _state.update { it.copy(confirmPlainHttp = null) }

    private suspend fun enroll(url: String, code: String, allowPlainHttp: Boolean) {
        _state.update { it.copy(busy = true, notice = null) }
        val notice = try {
            repo.enroll(url, code, allowPlainHttp)
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

/** The form with another server address: a plain-HTTP answer given for the old one no longer holds. */
private fun EnrollState.withServerUrl(url: String) =
    copy(serverUrl = url, notice = null, plainHttpConfirmedFor = null, confirmPlainHttp = null)
