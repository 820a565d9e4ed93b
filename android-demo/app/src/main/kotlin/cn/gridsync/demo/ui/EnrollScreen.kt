package cn.gridsync.demo.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.foundation.layout.size
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.input.KeyboardCapitalization
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.EnrollViewModel

/**
 * Server address and one-time code from the command centre, typed or filled by
 * scanning the QR code of the printed card ([ScanScreen]). A plain `http://`
 * address to this phone, the emulator's host or the LAN is asked about first
 * ([PlainHttpDialog]); any other plain `http://` address is refused by the logic.
 */
@Composable
fun EnrollScreen(vm: EnrollViewModel) {
    val state by vm.state.collectAsStateWithLifecycle()
    state.confirmPlainHttp?.let { url ->
        PlainHttpDialog(url, onConfirm = { vm.confirmPlainHttp() }, onDismiss = vm::cancelPlainHttp)
    }
    Column(
        modifier = Modifier
            .fillMaxSize()
            .safeDrawingPadding()
            .imePadding()
            .verticalScroll(rememberScrollState())
            .padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text(stringResource(R.string.enroll_title), style = MaterialTheme.typography.headlineSmall)
        Text(stringResource(R.string.enroll_hint), style = MaterialTheme.typography.bodyMedium)
        OutlinedButton(onClick = vm::startScan, enabled = !state.busy, modifier = Modifier.fillMaxWidth()) {
            Text(stringResource(R.string.enroll_scan))
        }
        OutlinedTextField(
            value = state.serverUrl,
            onValueChange = vm::onServerUrlChange,
            label = { Text(stringResource(R.string.enroll_server_url)) },
            placeholder = { Text("https://") },
            singleLine = true,
            keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Uri),
            modifier = Modifier.fillMaxWidth(),
        )
        OutlinedTextField(
            value = state.code,
            onValueChange = vm::onCodeChange,
            label = { Text(stringResource(R.string.enroll_code)) },
            singleLine = true,
            keyboardOptions = KeyboardOptions(
                capitalization = KeyboardCapitalization.Characters,
                keyboardType = KeyboardType.Ascii,
            ),
            modifier = Modifier.fillMaxWidth(),
        )
        NoticeText(state.notice)
        Button(onClick = { vm.submit() }, enabled = !state.busy, modifier = Modifier.fillMaxWidth()) {
            if (state.busy) {
                CircularProgressIndicator(modifier = Modifier.size(18.dp), strokeWidth = 2.dp)
            } else {
                Text(stringResource(R.string.enroll_submit))
            }
        }
    }
}

/** 这是测试服务器吗？ Plain HTTP is unencrypted: only a test server, only if the user says so. */
@Composable
private fun PlainHttpDialog(url: String, onConfirm: () -> Unit, onDismiss: () -> Unit) {
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text(stringResource(R.string.plain_http_title)) },
        text = { Text(stringResource(R.string.plain_http_body, url)) },
        confirmButton = {
            TextButton(onClick = onConfirm) { Text(stringResource(R.string.plain_http_confirm)) }
        },
        dismissButton = {
            TextButton(onClick = onDismiss) { Text(stringResource(R.string.plain_http_cancel)) }
        },
    )
}
