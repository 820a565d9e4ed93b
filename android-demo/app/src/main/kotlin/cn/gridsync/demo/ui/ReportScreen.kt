package cn.gridsync.demo.ui

import android.Manifest
import android.content.ActivityNotFoundException
import android.content.Context
import android.net.Uri
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.imePadding
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyRow
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.core.content.FileProvider
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.ReportViewModel
import cn.gridsync.demo.logic.Severity
import java.io.File
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** The camera app writes here; the file is deleted once the engine has ingested it. */
private fun cameraFile(context: Context): File =
    File(context.cacheDir, "camera").apply { mkdirs() }.resolve("capture.jpg")

/** Report a case: title, category, severity, address, photos, the current location. */
@Composable
fun ReportScreen(vm: ReportViewModel, onReported: () -> Unit) {
    val state by vm.state.collectAsStateWithLifecycle()
    val context = LocalContext.current
    val scope = rememberCoroutineScope()
    var cameraMissing by remember { mutableStateOf(false) }
    var cameraRefused by remember { mutableStateOf(false) }
    var handled by rememberSaveable { mutableStateOf(state.reportedCaseId) }

    val takePicture = rememberLauncherForActivityResult(ActivityResultContracts.TakePicture()) { saved ->
        val file = cameraFile(context)
        scope.launch {
            if (saved) {
                // The original still has EXIF (GPS, device serial): only the engine's
                // cleaned copy is kept.
                val bytes = withContext(Dispatchers.IO) { file.takeIf { it.exists() }?.readBytes() }
                if (bytes != null) vm.attachPhoto(bytes, "IMG_${System.currentTimeMillis()}.jpg").join()
            }
            withContext(Dispatchers.IO) { file.delete() }
        }
    }

    // The manifest asks for CAMERA (the enrollment scanner), so Android lets the camera
    // app be started only once that permission is granted.
    fun openCamera() {
        val uri: Uri = FileProvider.getUriForFile(context, "${context.packageName}.fileprovider", cameraFile(context))
        try {
            cameraMissing = false
            takePicture.launch(uri)
        } catch (e: ActivityNotFoundException) {
            cameraMissing = true
        }
    }
    val askCamera = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { ok ->
        cameraRefused = !ok
        if (ok) openCamera()
    }

    // After a successful report, show the list where the new case appears.
    LaunchedEffect(state.reportedCaseId) {
        val id = state.reportedCaseId
        if (id != null && id != handled) {
            handled = id
            onReported()
        }
    }

    Column(
        modifier = Modifier
            .fillMaxSize()
            .imePadding()
            .verticalScroll(rememberScrollState())
            .padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text(stringResource(R.string.report_heading), style = MaterialTheme.typography.titleLarge)
        OutlinedTextField(
            value = state.title,
            onValueChange = vm::onTitleChange,
            label = { Text(stringResource(R.string.report_title)) },
            singleLine = true,
            modifier = Modifier.fillMaxWidth(),
        )
        OutlinedTextField(
            value = state.description,
            onValueChange = vm::onDescriptionChange,
            label = { Text(stringResource(R.string.report_description)) },
            minLines = 3,
            modifier = Modifier.fillMaxWidth(),
        )

        Text(stringResource(R.string.report_category), style = MaterialTheme.typography.labelLarge)
        LazyRow(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            items(state.categories, key = { it.code }) { c ->
                FilterChip(selected = state.category == c.code, onClick = { vm.onCategoryChange(c.code) }, label = { Text(c.name) })
            }
        }
        val subcategories = state.categories.firstOrNull { it.code == state.category }?.subcategories.orEmpty()
        if (subcategories.isNotEmpty()) {
            Text(stringResource(R.string.report_subcategory), style = MaterialTheme.typography.labelLarge)
            LazyRow(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                items(subcategories, key = { it.code }) { s ->
                    val selected = state.subcategory == s.code
                    FilterChip(
                        selected = selected,
                        onClick = { vm.onSubcategoryChange(if (selected) null else s.code) },
                        label = { Text(s.name) },
                    )
                }
            }
        }
        Text(stringResource(R.string.report_severity), style = MaterialTheme.typography.labelLarge)
        LazyRow(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            items(Severity.entries) { s ->
                FilterChip(selected = state.severity == s, onClick = { vm.onSeverityChange(s) }, label = { Text(stringResource(s.res())) })
            }
        }

        OutlinedTextField(
            value = state.address,
            onValueChange = vm::onAddressChange,
            label = { Text(stringResource(R.string.report_address)) },
            singleLine = true,
            modifier = Modifier.fillMaxWidth(),
        )
        Text(
            stringResource(if (state.location != null) R.string.report_location_attached else R.string.report_location_missing),
            style = MaterialTheme.typography.bodySmall,
            color = MaterialTheme.colorScheme.onSurfaceVariant,
        )

        Text(stringResource(R.string.report_photos, state.photos.size), style = MaterialTheme.typography.labelLarge)
        LazyRow(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            items(state.photos, key = { it.hash }) { photo ->
                Column {
                    PhotoThumb(photo.thumb, vm::photoBytes)
                    TextButton(onClick = { vm.removePhoto(photo.hash) }) { Text(stringResource(R.string.report_remove_photo)) }
                }
            }
        }
        OutlinedButton(
            onClick = {
                if (hasCameraPermission(context)) openCamera() else askCamera.launch(Manifest.permission.CAMERA)
            },
            enabled = !state.busy,
        ) {
            Text(stringResource(R.string.report_take_photo))
        }
        if (cameraMissing) {
            Text(stringResource(R.string.camera_unavailable), color = MaterialTheme.colorScheme.error)
        }
        if (cameraRefused) {
            Text(stringResource(R.string.camera_refused), color = MaterialTheme.colorScheme.error)
        }

        NoticeText(state.notice)
        Button(onClick = { vm.submit() }, enabled = !state.busy, modifier = Modifier.fillMaxWidth()) {
            Text(stringResource(R.string.report_submit))
        }
    }
}
