package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.statusBarsPadding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.filled.Refresh
import androidx.compose.material.icons.filled.Warning
import androidx.compose.material3.Icon
import androidx.compose.material3.IconButton
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.SyncViewModel

/** Online or offline, what waits to be sent, progress, and the sync button. */
@Composable
fun SyncBar(vm: SyncViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
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
        }
    }
}
