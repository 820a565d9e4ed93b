package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.statusBarsPadding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.MoreVert
import androidx.compose.material.icons.filled.Refresh
import androidx.compose.material.icons.filled.Warning
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.DropdownMenu
import androidx.compose.material3.DropdownMenuItem
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.DeviceViewModel
import cn.gridsync.demo.logic.SyncViewModel

/**
 * Online or offline, what waits to be sent, progress, the sync button, a mark when
 * the server is a plain-HTTP test server, and a menu with 退出并清除.
 */
@Composable
fun SyncBar(vm: SyncViewModel, device: DeviceViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
    val deviceState by device.state.collectAsStateWithLifecycle()
    val colors = MaterialTheme.colorScheme
    Surface(color = if (state.offline) colors.errorContainer else colors.primaryContainer) {
        Column(Modifier.statusBarsPadding().padding(horizontal = 16.dp, vertical = 8.dp)) {
            Row(verticalAlignment = Alignment.CenterVertically, horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                if (state.offline) Icon(Icons.Filled.Warning, contentDescription = null)
                Text(
                    stringResource(if (state.offline) R.string.sync_offline else R.string.sync_online),
                    style = MaterialTheme.typography.titleSmall,
                )
                Text(
                    if (state.pendingCount > 0) stringResource(R.string.sync_pending, state.pendingCount)
                    else stringResource(R.string.sync_nothing_pending),
                    style = MaterialTheme.typography.bodySmall,
                )
                Spacer(Modifier.weight(1f))
                IconButton(onClick = { vm.syncNow() }, enabled = !state.running) {
                    Icon(Icons.Filled.Refresh, contentDescription = stringResource(R.string.sync_now))
                }
                DeviceMenu(device)
            }
            if (state.plainHttp) {
                Text(
                    stringResource(R.string.sync_plain_http),
                    color = colors.error,
                    style = MaterialTheme.typography.labelSmall,
                )
            }
            val progress = state.progress
            if (state.running) {
                if (progress != null) {
                    Text(stringResource(R.string.sync_running, stringResource(progress.phase.res()), progress.items), style = MaterialTheme.typography.bodySmall)
                }
                val fraction = progress?.fraction
                if (fraction != null) {
                    LinearProgressIndicator(progress = { fraction }, modifier = Modifier.fillMaxWidth())
                } else {
                    LinearProgressIndicator(modifier = Modifier.fillMaxWidth())
                }
            } else {
                state.lastResult?.let {
                    Text(
                        stringResource(R.string.sync_last, formatTime(it.atMs), it.pushed, it.pulled, it.photosUploaded),
                        style = MaterialTheme.typography.bodySmall,
                    )
                }
            }
            NoticeText(state.notice)
            NoticeText(deviceState.notice)
        }
    }
}

/** The overflow menu: 退出并清除, after a confirmation that says what is lost. */
@Composable
private fun DeviceMenu(vm: DeviceViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
    var expanded by rememberSaveable { mutableStateOf(false) }
    var confirming by rememberSaveable { mutableStateOf(false) }
    Box {
        IconButton(onClick = { expanded = true }) {
            Icon(Icons.Filled.MoreVert, contentDescription = stringResource(R.string.menu_more))
        }
        DropdownMenu(expanded = expanded, onDismissRequest = { expanded = false }) {
            DropdownMenuItem(
                text = { Text(stringResource(R.string.sign_out_erase)) },
                enabled = !state.busy,
                onClick = {
                    expanded = false
                    confirming = true
                },
            )
        }
    }
    if (confirming) {
        AlertDialog(
            onDismissRequest = { confirming = false },
            title = { Text(stringResource(R.string.sign_out_erase_title)) },
            text = {
                Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                    Text(stringResource(R.string.sign_out_erase_body))
                    if (state.pendingCount > 0) {
                        Text(
                            stringResource(R.string.sign_out_erase_unsynced, state.pendingCount),
                            color = MaterialTheme.colorScheme.error,
                        )
                    }
                }
            },
            confirmButton = {
                TextButton(onClick = {
                    confirming = false
                    vm.signOutAndErase()
                }) {
                    Text(stringResource(R.string.sign_out_erase), color = MaterialTheme.colorScheme.error)
                }
            },
            dismissButton = {
                TextButton(onClick = { confirming = false }) { Text(stringResource(R.string.plain_http_cancel)) }
            },
        )
    }
}
