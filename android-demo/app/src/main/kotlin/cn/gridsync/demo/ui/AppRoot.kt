package cn.gridsync.demo.ui

import android.Manifest
import android.os.Build
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
import androidx.compose.material.icons.filled.Star
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.Icon
import androidx.compose.material3.NavigationBar
import androidx.compose.material3.NavigationBarItem
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.vector.ImageVector
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import cn.gridsync.demo.GridApp
import cn.gridsync.demo.R
import cn.gridsync.demo.logic.CaseListViewModel
import cn.gridsync.demo.logic.DeviceViewModel
import cn.gridsync.demo.logic.EnrollViewModel
import cn.gridsync.demo.logic.PatrolViewModel
import cn.gridsync.demo.logic.PointsViewModel
import cn.gridsync.demo.logic.ReportViewModel
import cn.gridsync.demo.logic.SyncViewModel
import cn.gridsync.demo.platform.CurrentLocation
import cn.gridsync.demo.platform.PatrolLocationService
import cn.gridsync.demo.platform.hasLocationPermission

/**
 * Enrollment until the device has a session; then the field app. Every erase (a
 * remote wipe seen by the sync bar or the background worker, or 退出并清除) ends the
 * session in the repository, and this shows enrollment again with the reason.
 */
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
        state.session == null && state.scanning -> ScanScreen(enroll)
        state.session == null -> EnrollScreen(enroll)
        else -> FieldScreen(app)
    }
}

private enum class Tab(val label: Int, val icon: ImageVector) {
    PATROL(R.string.tab_patrol, Icons.Filled.Place),
    REPORT(R.string.tab_report, Icons.Filled.Add),
    CASES(R.string.tab_cases, Icons.AutoMirrored.Filled.List),
    POINTS(R.string.tab_points, Icons.Filled.Star),
}

/** Location, and on Android 13+ the patrol's notification: asked for together. */
private val fieldPermissions: Array<String> =
    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
        arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION, Manifest.permission.POST_NOTIFICATIONS)
    } else {
        arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION)
    }

/** The sync bar on top, four tabs below it, and a case's detail over the tabs. */
@Composable
private fun FieldScreen(app: GridApp) {
    val context = LocalContext.current
    val patrol = rememberLogic { PatrolViewModel(app.repository, app.recorder, it) }
    val report = rememberLogic { ReportViewModel(app.repository, it) }
    val cases = rememberLogic { CaseListViewModel(app.repository, it) }
    val points = rememberLogic { PointsViewModel(app.repository, it) }
    val sync = rememberLogic { SyncViewModel(app.repository, app.connectivity, it) }
    val device = rememberLogic { DeviceViewModel(app.repository, it) }
    var tab by rememberSaveable { mutableStateOf(Tab.PATROL) }
    var openCase by rememberSaveable { mutableStateOf<String?>(null) }

    // Location: asked for once; the patrol's foreground service and the report form use it.
    var locationGranted by rememberSaveable { mutableStateOf(hasLocationPermission(context)) }
    val askPermissions = rememberLauncherForActivityResult(ActivityResultContracts.RequestMultiplePermissions()) {
        locationGranted = hasLocationPermission(context)
    }
    LaunchedEffect(Unit) {
        if (!locationGranted) askPermissions.launch(fieldPermissions)
    }

    // While a patrol runs, its foreground location service records the track. It is
    // started from here, with the app visible (Android does not let a location
    // service start from the background); it stops itself when the patrol ends.
    // After the process was killed mid-patrol, this restarts it when the app opens.
    val patrolState by patrol.state.collectAsStateWithLifecycle()
    val activePatrolId = patrolState.active?.id
    LaunchedEffect(activePatrolId, locationGranted) {
        if (activePatrolId != null && locationGranted) PatrolLocationService.start(context)
    }

    // The report form's location: the service's fixes during a patrol, otherwise a
    // last known fix and then one fresh fix when the form is shown.
    LaunchedEffect(Unit) {
        app.recorder.lastFix.collect { fix -> fix?.let(report::onLocation) }
    }
    LaunchedEffect(tab, locationGranted) {
        if (tab == Tab.REPORT && locationGranted && activePatrolId == null) {
            CurrentLocation.lastKnown(context)?.let(report::onLocation)
            CurrentLocation.fresh(context)?.let(report::onLocation)
        }
    }

    BackHandler(enabled = openCase != null) { openCase = null }

    Scaffold(
        topBar = { SyncBar(sync, device) },
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
                    Tab.PATROL -> PatrolScreen(patrol, locationGranted) { askPermissions.launch(fieldPermissions) }
                    Tab.REPORT -> ReportScreen(report, onReported = { tab = Tab.CASES })
                    Tab.CASES -> CaseListScreen(cases, onOpen = { openCase = it })
                    Tab.POINTS -> PointsScreen(points)
                }
            }
        }
    }
}
