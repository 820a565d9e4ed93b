package cn.gridsync.demo.platform

import android.app.Notification
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import androidx.core.app.NotificationChannelCompat
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import cn.gridsync.demo.MainActivity
import cn.gridsync.demo.R

/**
 * The two ongoing notifications: a patrol being recorded, and (on Android 11 and
 * older, where WorkManager runs an expedited job as a foreground service) a sync.
 * Low importance: no sound, no heads-up. They name no resident, case or place.
 */
object Notifications {
    const val PATROL_CHANNEL = "patrol"
    const val SYNC_CHANNEL = "sync"
    const val PATROL_ID = 1
    const val SYNC_ID = 2

    /** Create the channels (idempotent; names follow the phone's language). */
    fun createChannels(context: Context) {
        val manager = NotificationManagerCompat.from(context)
        manager.createNotificationChannel(
            NotificationChannelCompat.Builder(PATROL_CHANNEL, NotificationManagerCompat.IMPORTANCE_LOW)
                .setName(context.getString(R.string.channel_patrol))
                .setDescription(context.getString(R.string.channel_patrol_description))
                .build(),
        )
        manager.createNotificationChannel(
            NotificationChannelCompat.Builder(SYNC_CHANNEL, NotificationManagerCompat.IMPORTANCE_LOW)
                .setName(context.getString(R.string.channel_sync))
                .build(),
        )
    }

    /** While a patrol is recorded; tapping it opens the app. */
    fun patrol(context: Context): Notification =
        NotificationCompat.Builder(context, PATROL_CHANNEL)
            .setSmallIcon(android.R.drawable.ic_menu_mylocation)
            .setContentTitle(context.getString(R.string.notification_patrol_title))
            .setContentText(context.getString(R.string.notification_patrol_text))
            .setOngoing(true)
            .setCategory(NotificationCompat.CATEGORY_SERVICE)
            .setForegroundServiceBehavior(NotificationCompat.FOREGROUND_SERVICE_IMMEDIATE)
            .setContentIntent(openApp(context))
            .build()

    /** While an expedited sync runs as a foreground service (Android 11 and older). */
    fun sync(context: Context): Notification =
        NotificationCompat.Builder(context, SYNC_CHANNEL)
            .setSmallIcon(android.R.drawable.stat_notify_sync)
            .setContentTitle(context.getString(R.string.notification_sync_title))
            .setOngoing(true)
            .setCategory(NotificationCompat.CATEGORY_PROGRESS)
            .build()

    private fun openApp(context: Context): PendingIntent =
        PendingIntent.getActivity(
            context,
            0,
            Intent(context, MainActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP),
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
}
