package cn.gridsync.demo.ui

import androidx.annotation.StringRes
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.Notice
import cn.gridsync.demo.logic.Severity
import cn.gridsync.demo.logic.SyncPhase
import cn.gridsync.demo.logic.UiMessage
import java.time.Instant
import java.time.ZoneId
import java.time.format.DateTimeFormatter

// The logic layer's keys → string resources. `when` is exhaustive: a new key does
// not compile until it has a string here.

@StringRes
fun UiMessage.res(): Int = when (this) {
    UiMessage.SERVER_URL_REQUIRED -> R.string.msg_server_url_required
    UiMessage.SERVER_URL_INVALID -> R.string.msg_server_url_invalid
    UiMessage.PLAIN_HTTP_REFUSED -> R.string.msg_plain_http_refused
    UiMessage.CODE_REQUIRED -> R.string.msg_code_required
    UiMessage.QR_NOT_ENROLLMENT -> R.string.msg_qr_not_enrollment
    UiMessage.CODE_REJECTED -> R.string.msg_code_rejected
    UiMessage.ENROLLED -> R.string.msg_enrolled
    UiMessage.NOT_ENROLLED -> R.string.msg_not_enrolled
    UiMessage.OFFLINE -> R.string.msg_offline
    UiMessage.SYNC_DONE -> R.string.msg_sync_done
    UiMessage.SYNC_REJECTED -> R.string.msg_sync_rejected
    UiMessage.REENROLL_NEEDED -> R.string.msg_reenroll_needed
    UiMessage.DEVICE_REVOKED -> R.string.msg_device_revoked
    UiMessage.DEVICE_WIPED -> R.string.msg_device_wiped
    UiMessage.SIGNED_OUT_ERASED -> R.string.msg_signed_out_erased
    UiMessage.KEY_MISMATCH -> R.string.msg_key_mismatch
    UiMessage.TITLE_REQUIRED -> R.string.msg_title_required
    UiMessage.TITLE_TOO_LONG -> R.string.msg_title_too_long
    UiMessage.DESCRIPTION_TOO_LONG -> R.string.msg_description_too_long
    UiMessage.ADDRESS_TOO_LONG -> R.string.msg_address_too_long
    UiMessage.CATEGORY_REQUIRED -> R.string.msg_category_required
    UiMessage.PHOTO_REJECTED -> R.string.msg_photo_rejected
    UiMessage.REPORT_SAVED -> R.string.msg_report_saved
    UiMessage.PATROL_STARTED -> R.string.msg_patrol_started
    UiMessage.PATROL_ENDED -> R.string.msg_patrol_ended
    UiMessage.NO_ACTIVE_PATROL -> R.string.msg_no_active_patrol
    UiMessage.NOT_ALLOWED -> R.string.msg_not_allowed
    UiMessage.NOT_FOUND -> R.string.msg_not_found
    UiMessage.INVALID_INPUT -> R.string.msg_invalid_input
    UiMessage.STORAGE_FAILED -> R.string.msg_storage_failed
    UiMessage.FAILED -> R.string.msg_failed
}

/** Messages that confirm something rather than report a problem. */
val UiMessage.isInfo: Boolean
    get() = this in setOf(
        UiMessage.ENROLLED, UiMessage.SYNC_DONE, UiMessage.REPORT_SAVED,
        UiMessage.PATROL_STARTED, UiMessage.PATROL_ENDED, UiMessage.SIGNED_OUT_ERASED,
    )

@StringRes
fun Severity.res(): Int = when (this) {
    Severity.LOW -> R.string.severity_low
    Severity.NORMAL -> R.string.severity_normal
    Severity.HIGH -> R.string.severity_high
    Severity.URGENT -> R.string.severity_urgent
}

@StringRes
fun SyncPhase.res(): Int = when (this) {
    SyncPhase.PUSH -> R.string.sync_phase_push
    SyncPhase.PULL -> R.string.sync_phase_pull
    SyncPhase.PHOTOS -> R.string.sync_phase_photos
}

/** A notice from a view-model, in the error colour unless it confirms something. */
@Composable
fun NoticeText(notice: Notice?, modifier: Modifier = Modifier) {
    if (notice == null) return
    Text(
        text = stringResource(notice.message.res()),
        color = if (notice.message.isInfo) MaterialTheme.colorScheme.primary else MaterialTheme.colorScheme.error,
        style = MaterialTheme.typography.bodyMedium,
        modifier = modifier,
    )
}

private val timeFormat = DateTimeFormatter.ofPattern("MM-dd HH:mm")

fun formatTime(ms: Long): String = timeFormat.format(Instant.ofEpochMilli(ms).atZone(ZoneId.systemDefault()))

fun formatDuration(ms: Long): String {
    val s = (ms / 1000).coerceAtLeast(0)
    return "%d:%02d:%02d".format(s / 3600, s / 60 % 60, s % 60)
}
