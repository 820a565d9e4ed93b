package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.ButtonDefaults
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableLongStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.PatrolViewModel
import kotlinx.coroutines.delay

/**
 * Start and end a patrol. Meanwhile the foreground location service records the
 * track (started by AppRoot while a patrol is active), also with the screen off.
 */
@Composable
fun PatrolScreen(vm: PatrolViewModel, locationGranted: Boolean, onRequestLocation: () -> Unit) {
    val state by vm.state.collectAsStateWithLifecycle()
    val active = state.active
    var now by remember { mutableLongStateOf(System.currentTimeMillis()) }
    LaunchedEffect(active?.id) {
        while (active != null) {
            now = System.currentTimeMillis()
            delay(1_000)
        }
    }

    Column(
        modifier = Modifier.fillMaxSize().padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(16.dp),
    ) {
        if (!locationGranted) {
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
                    Text(stringResource(R.string.location_needed))
                    OutlinedButton(onClick = onRequestLocation) { Text(stringResource(R.string.location_grant)) }
                }
            }
        }
        Card(Modifier.fillMaxWidth()) {
            Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
                Text(
                    stringResource(if (active != null) R.string.patrol_active else R.string.patrol_idle),
                    style = MaterialTheme.typography.titleLarge,
                )
                if (active != null) {
                    Text(stringResource(R.string.patrol_elapsed, formatDuration(now - active.startedAtMs)))
                    Text(
                        if (state.buffered > 0) stringResource(R.string.patrol_points_buffered, state.points, state.buffered)
                        else stringResource(R.string.patrol_points, state.points),
                    )
                    Text(
                        stringResource(R.string.patrol_background),
                        style = MaterialTheme.typography.bodySmall,
                        color = MaterialTheme.colorScheme.onSurfaceVariant,
                    )
                }
                state.lastEnded?.takeIf { active == null }?.let {
                    Text(stringResource(R.string.patrol_last, it.points, formatDuration(it.durationMs)))
                }
                Text(
                    stringResource(R.string.patrol_target),
                    style = MaterialTheme.typography.bodySmall,
                    color = MaterialTheme.colorScheme.onSurfaceVariant,
                )
            }
        }
        NoticeText(state.notice)
        if (active == null) {
            Button(onClick = { vm.start() }, enabled = !state.busy, modifier = Modifier.fillMaxWidth()) {
                Text(stringResource(R.string.patrol_start))
            }
        } else {
            Button(
                onClick = { vm.stop() },
                enabled = !state.busy,
                colors = ButtonDefaults.buttonColors(containerColor = MaterialTheme.colorScheme.error),
                modifier = Modifier.fillMaxWidth(),
            ) {
                Text(stringResource(R.string.patrol_stop))
            }
        }
    }
}
