package cn.gridsync.demo.ui

import android.Manifest
import androidx.activity.compose.BackHandler
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.padding
import androidx.compose.material.icons.Icons
import androidx.compose.material.icons.automirrored.filled.List
import androidx.compose.material.icons.filled.Add
import androidx.compose.material.icons.filled.Place
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.Icon
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.compose.ui.res.stringResource
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.GridApp
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.CaseListViewModel
import cn.gridsync.demo.logic.EnrollViewModel
import cn.gridsync.demo.logic.PatrolViewModel
import cn.gridsync.demo.logic.ReportViewModel
import cn.gridsync.demo.logic.SyncViewModel

/** Enrollment until the device has a session; then the field app. */
@Composable
fun AppRoot(app: GridApp) {
    val enroll = rememberLogic { EnrollViewModel(app.repository, it) }
    var restored by rememberSaveable { mutableStateOf(false) }
    LaunchedEffect(Unit) {
        enroll.restore().join()
        restored = true
    }
    val state by enroll.state.collectAsStateWithLifecycle()
    when {
        !restored -> Box(Modifier.fillMaxSize(), contentAlignment = Alignment.Center) { CircularProgressIndicator() }
        state.session == null -> EnrollScreen(enroll)
        else -> FieldScreen(app)
    }
}

private enum class Tab(val label: Int, val icon: ImageVector) {
    PATROL(R.string.tab_patrol, Icons.Filled.Place),
    REPORT(R.string.tab_report, Icons.Filled.Add),
    CASES(R.string.tab_cases, Icons.AutoMirrored.Filled.List),
}

/** The sync bar on top, three tabs below it, and a case's detail over the tabs. */
@Composable
private fun FieldScreen(app: GridApp) {
    val patrol = rememberLogic { PatrolViewModel(app.repository, it) }
    val report = rememberLogic { ReportViewModel(app.repository, it) }
    val cases = rememberLogic { CaseListViewModel(app.repository, it) }
    val sync = rememberLogic { SyncViewModel(app.repository, app.connectivity, it) }
    var tab by rememberSaveable { mutableStateOf(Tab.PATROL) }
    var openCase by rememberSaveable { mutableStateOf<String?>(null) }

    // Location: asked for once, then fixes feed the patrol track and the report form.
    var locationGranted by rememberSaveable { mutableStateOf(app.location.hasPermission()) }
    val askLocation = rememberLauncherForActivityResult(ActivityResultContracts.RequestMultiplePermissions()) {
        locationGranted = app.location.hasPermission()
    }
    LaunchedEffect(Unit) {
        if (!locationGranted) {
            askLocation.launch(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION))
        }
    }
    DisposableEffect(locationGranted) {
        if (locationGranted) {
            app.location.lastKnown()?.let(report::onLocation)
            app.location.start { fix ->
                patrol.onLocation(fix)
                report.onLocation(fix)
            }
        }
        onDispose { app.location.stop() }
    }

    BackHandler(enabled = openCase != null) { openCase = null }

    Scaffold(
        topBar = { SyncBar(sync) },
        bottomBar = {
            if (openCase == null) {
                NavigationBar {
                    Tab.entries.forEach { t ->
                        NavigationBarItem(
                            selected = tab == t,
                            onClick = { tab = t },
                            icon = { Icon(t.icon, contentDescription = null) },
                            label = { Text(stringResource(t.label)) },
                        )
                    }
                }
            }
        },
    ) { padding ->
        Box(Modifier.padding(padding).fillMaxSize()) {
            val caseId = openCase
            if (caseId != null) {
                CaseDetailScreen(app.repository, caseId, onBack = { openCase = null })
            } else {
                when (tab) {
                    Tab.PATROL -> PatrolScreen(patrol, locationGranted) {
                        askLocation.launch(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION))
                    }
                    Tab.REPORT -> ReportScreen(report, onReported = { tab = Tab.CASES })
                    Tab.CASES -> CaseListScreen(cases, onOpen = { openCase = it })
                }
            }
        }
    }
}
