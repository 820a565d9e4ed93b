package cn.gridsync.demo.ui

import android.Manifest
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.provider.Settings
import androidx.activity.compose.BackHandler
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import androidx.lifecycle.compose.LifecycleResumeEffect
import androidx.lifecycle.compose.LocalLifecycleOwner
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.EnrollViewModel
import cn.gridsync.demo.logic.LuminanceFrame
import java.util.concurrent.Executors

/** Whether the app may use the camera (the scanner's preview, the camera app's photos). */
fun hasCameraPermission(context: Context): Boolean =
    ContextCompat.checkSelfPermission(context, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED

/**
 * 扫描注册码: the back camera looks for the QR code on a card of the command centre's
 * sheet. Every frame goes to [EnrollViewModel.onFrame], which decodes it; a link
 * fills the form and ends the scan (the app shows the form again), another QR code
 * shows its message here. The camera permission is asked for on this screen, after
 * saying what it is for; without it the worker goes back and types the code.
 */
@Composable
fun ScanScreen(vm: EnrollViewModel) {
    val context = LocalContext.current
    val state by vm.state.collectAsStateWithLifecycle()
    var granted by remember { mutableStateOf(hasCameraPermission(context)) }
    var refused by rememberSaveable { mutableStateOf(false) }
    var cameraFailed by remember { mutableStateOf(false) }
    val askCamera = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { ok ->
        granted = ok
        refused = !ok
    }
    // Back from the system settings, where the permission may have been given.
    LifecycleResumeEffect(Unit) {
        granted = hasCameraPermission(context)
        onPauseOrDispose { }
    }
    BackHandler(onBack = vm::cancelScan)

    Column(
        modifier = Modifier.fillMaxSize().safeDrawingPadding().padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        Text(stringResource(R.string.scan_title), style = MaterialTheme.typography.headlineSmall)
        when {
            cameraFailed -> Text(stringResource(R.string.scan_camera_failed), color = MaterialTheme.colorScheme.error)
            granted -> {
                CameraFrames(
                    onFrame = vm::onFrame,
                    onFailure = { cameraFailed = true },
                    modifier = Modifier.fillMaxWidth().aspectRatio(3f / 4f),
                )
                Text(stringResource(R.string.scan_hint), style = MaterialTheme.typography.bodyMedium)
                NoticeText(state.notice)
            }
            refused -> {
                Text(stringResource(R.string.scan_camera_refused), style = MaterialTheme.typography.bodyMedium)
                Button(onClick = {
                    context.startActivity(
                        Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", context.packageName, null)),
                    )
                }) { Text(stringResource(R.string.scan_open_settings)) }
            }
            else -> {
                Text(stringResource(R.string.scan_camera_why), style = MaterialTheme.typography.bodyMedium)
                Button(onClick = { askCamera.launch(Manifest.permission.CAMERA) }) {
                    Text(stringResource(R.string.scan_camera_allow))
                }
            }
        }
        OutlinedButton(onClick = vm::cancelScan, modifier = Modifier.fillMaxWidth()) {
            Text(stringResource(R.string.scan_back))
        }
    }
}

/**
 * The back camera's preview, and its frames' luminance to [onFrame] on one
 * background thread, the latest frame only (a slow decode skips frames rather than
 * queueing them). Bound to the screen's lifecycle; unbound when it leaves.
 */
@Composable
private fun CameraFrames(onFrame: (LuminanceFrame) -> Unit, onFailure: () -> Unit, modifier: Modifier) {
    val context = LocalContext.current
    val lifecycleOwner = LocalLifecycleOwner.current
    val previewView = remember { PreviewView(context) }
    DisposableEffect(lifecycleOwner) {
        val analyzerThread = Executors.newSingleThreadExecutor()
        val preview = Preview.Builder().build()
        val analysis = ImageAnalysis.Builder()
            .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
            .build()
        analysis.setAnalyzer(analyzerThread) { image -> image.use { onFrame(it.luminance()) } }
        val providerFuture = ProcessCameraProvider.getInstance(context)
        var provider: ProcessCameraProvider? = null
        var disposed = false
        providerFuture.addListener({
            if (disposed) return@addListener
            try {
                val p = providerFuture.get()
                preview.setSurfaceProvider(previewView.surfaceProvider)
                p.bindToLifecycle(lifecycleOwner, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
                provider = p
            } catch (e: Exception) {
                // No back camera, or the camera is in use by another app.
                onFailure()
            }
        }, ContextCompat.getMainExecutor(context))
        onDispose {
            disposed = true
            provider?.unbind(preview, analysis)
            analysis.clearAnalyzer()
            analyzerThread.shutdown()
        }
    }
    AndroidView(factory = { previewView }, modifier = modifier)
}

/** The Y plane of the analyzer's `YUV_420_888` image: one byte per pixel, rows possibly padded. */
private fun ImageProxy.luminance(): LuminanceFrame {
    val y = planes[0]
    val bytes = ByteArray(y.buffer.remaining()).also { y.buffer.get(it) }
    return LuminanceFrame(bytes, width, height, y.rowStride)
}
