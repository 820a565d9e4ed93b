package cn.gridsync.demo.platform

import android.content.Context
import android.content.pm.ServiceInfo
import android.os.Build
import androidx.work.CoroutineWorker
import androidx.work.ForegroundInfo
import androidx.work.WorkerParameters
import cn.gridsync.demo.GridApp
import cn.gridsync.demo.logic.BackgroundSync
import cn.gridsync.demo.logic.BackgroundSyncOutcome

/**
 * One background sync, run by WorkManager ([WorkManagerSyncScheduler]): every 15
 * minutes at best with a network, and soon after a report. The logic is
 * [BackgroundSync] (tested on the JVM): it restores the device when WorkManager
 * started the process just for this, and on `Wiped` the repository takes the same
 * erase path as the sync bar — key deleted from the Keystore, settings cleared,
 * background sync cancelled — so the app opens at enrollment, saying why.
 *
 * Not compiled or run by CI (no Android SDK there); see README.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext as GridApp
        return when (BackgroundSync(app.repository, app.scheduler).run()) {
            BackgroundSyncOutcome.SYNCED,
            BackgroundSyncOutcome.ERASED,
            BackgroundSyncOutcome.NOT_ENROLLED -> Result.success()
            BackgroundSyncOutcome.RETRY -> Result.retry()
            BackgroundSyncOutcome.FAILED -> Result.failure()
        }
    }

    /**
     * An expedited request runs as a foreground service on Android 11 and older,
     * which needs a notification (and, from Android 10, the service's type, declared
     * for WorkManager's SystemForegroundService in the manifest).
     */
    override suspend fun getForegroundInfo(): ForegroundInfo {
        Notifications.createChannels(applicationContext)
        val notification = Notifications.sync(applicationContext)
        return if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            ForegroundInfo(Notifications.SYNC_ID, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        } else {
            ForegroundInfo(Notifications.SYNC_ID, notification)
        }
    }
}
