package cn.gridsync.demo.platform

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.OutOfQuotaPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import cn.gridsync.demo.logic.SyncScheduler
import java.util.concurrent.TimeUnit

/**
 * The logic's [SyncScheduler] on Android: [SyncWorker] through WorkManager, which
 * keeps its schedule across reboots and runs it when the constraints hold.
 *
 * - periodic: every 15 minutes (WorkManager's minimum; Android may stretch it in
 *   Doze and app standby), with any network connection, exponential backoff from
 *   30 s on a retry; kept (not replaced) when asked again at every start;
 * - soon: one expedited run after a report or a patrol, with a network, appended
 *   after a run already queued so nothing reported meanwhile waits for the next
 *   period; when the app's expedited quota is used up it runs as ordinary work;
 * - cancel: both, when the device is erased or not enrolled.
 *
 * Not compiled or run by CI (no Android SDK there); see README.
 */
class WorkManagerSyncScheduler(context: Context) : SyncScheduler {
    private val appContext = context.applicationContext
    private val work: WorkManager get() = WorkManager.getInstance(appContext)

    private val network = Constraints.Builder()
        .setRequiredNetworkType(NetworkType.CONNECTED)
        .build()

    override fun schedulePeriodic() {
        val request = PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES)
            .setConstraints(network)
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
            .addTag(TAG)
            .build()
        work.enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
    }

    override fun syncSoon() {
        val request = OneTimeWorkRequestBuilder<SyncWorker>()
            .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
            .setConstraints(network)
            .addTag(TAG)
            .build()
        work.enqueueUniqueWork(SOON, ExistingWorkPolicy.APPEND_OR_REPLACE, request)
    }

    override fun cancel() {
        work.cancelAllWorkByTag(TAG)
    }

    private companion object {
        const val TAG = "gridsync.sync"
        const val PERIODIC = "gridsync.sync.periodic"
        const val SOON = "gridsync.sync.soon"
    }
}
