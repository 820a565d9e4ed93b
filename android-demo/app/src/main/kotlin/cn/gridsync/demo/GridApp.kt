package cn.gridsync.demo

import android.app.Application
import cn.gridsync.demo.logic.Connectivity
import cn.gridsync.demo.logic.GridRepository
import cn.gridsync.demo.logic.PatrolRecorder
import cn.gridsync.demo.platform.AndroidConnectivity
import cn.gridsync.demo.platform.AndroidKeyStore
import cn.gridsync.demo.platform.AndroidSettings
import cn.gridsync.demo.platform.Notifications
import cn.gridsync.demo.platform.WorkManagerSyncScheduler
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob

/**
 * One engine per process: the repository owns it; the screens' view-models, the
 * patrol location service and the background sync worker share it (WorkManager may
 * start the process for the worker alone, with no screen). The database lives in
 * the app's private files (`files/gridsync/`), never on shared storage; `allowBackup`
 * is off so it is not copied off the phone either. It is opened with the device's
 * root key, which the Android Keystore wraps ([AndroidKeyStore]); every erase
 * deletes that key through the same object.
 */
class GridApp : Application() {
    /** Work that outlives a screen or the location service (writing the last fixes). */
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    val scheduler: WorkManagerSyncScheduler by lazy { WorkManagerSyncScheduler(this) }

    val repository: GridRepository by lazy {
        GridRepository(
            dataDir = File(filesDir, "gridsync"),
            settings = AndroidSettings(this),
            keys = AndroidKeyStore(this),
            io = Dispatchers.IO,
            appVersion = "android-demo/${BuildConfig.VERSION_NAME}",
            scheduler = scheduler,
        )
    }

    /** Patrol fixes, fed by the location service, written in batches. */
    val recorder: PatrolRecorder by lazy { PatrolRecorder(repository) }

    val connectivity: Connectivity by lazy { AndroidConnectivity(this) }

    override fun onCreate() {
        super.onCreate()
        Notifications.createChannels(this)
    }
}
