package cn.gridsync.demo.platform

import android.annotation.SuppressLint
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.ServiceInfo
import android.location.Location
import android.location.LocationListener
import android.location.LocationManager
import android.os.Build
import android.os.Bundle
import android.os.IBinder
import android.os.Looper
import androidx.core.app.ServiceCompat
import androidx.core.content.ContextCompat
import cn.gridsync.demo.GridApp
import cn.gridsync.demo.logic.GeoPoint
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch

/**
 * Records the patrol track: a foreground service of type `location`, started from
 * the patrol screen while a patrol runs, so fixes keep coming for a two-hour patrol
 * with the screen off or another app in front ("while in use" permission is enough
 * for a foreground service started while the app is visible).
 *
 * Fixes come from the platform LocationManager (no Google Play services, which many
 * phones sold in China lack), every 5 s or 5 m, and go in order to the process's
 * [cn.gridsync.demo.logic.PatrolRecorder], which writes them to the engine in
 * batches. The service stops itself when the patrol ends (or the device is erased)
 * and writes what the recorder holds as it stops. It is not sticky: a service
 * restarted by the system from the background may not start location tracking
 * (Android 12+), so after the process is killed tracking resumes when the app is
 * opened again (the patrol itself survives; see AppRoot). Fixes are personal data
 * and never logged.
 *
 * Not compiled or run by CI (no Android SDK there); see README.
 */
class PatrolLocationService : Service() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Main.immediate)
    private val fixes = Channel<GeoPoint>(Channel.UNLIMITED)
    private var listener: LocationListener? = null
    private val app get() = application as GridApp

    override fun onBind(intent: Intent?): IBinder? = null

    override fun onCreate() {
        super.onCreate()
        // One writer, in the order the fixes arrived.
        scope.launch {
            for (fix in fixes) {
                try {
                    app.recorder.onFix(fix)
                } catch (e: Exception) {
                    // The recorder keeps fixes it could not write; the patrol screen
                    // shows them as not yet written.
                }
            }
        }
        // The patrol ended (from the screen, or an erase): nothing left to record.
        scope.launch {
            app.repository.activePatrol.collect { if (it == null) stopSelf() }
        }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        Notifications.createChannels(this)
        val type = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION else 0
        try {
            ServiceCompat.startForeground(this, Notifications.PATROL_ID, Notifications.patrol(this), type)
        } catch (e: RuntimeException) {
            // SecurityException without location permission (Android 14+), or
            // ForegroundServiceStartNotAllowedException from the background (12+).
            stopSelf()
            return START_NOT_STICKY
        }
        if (!startUpdates()) stopSelf()
        return START_NOT_STICKY
    }

    /** Live fixes from GPS, or from the network provider when GPS is off. */
    @SuppressLint("MissingPermission") // checked by hasLocationPermission()
    private fun startUpdates(): Boolean {
        if (listener != null) return true
        if (!hasLocationPermission(this)) return false
        val manager = getSystemService(LocationManager::class.java) ?: return false
        val enabled = manager.getProviders(true)
        val provider = listOf(LocationManager.GPS_PROVIDER, LocationManager.NETWORK_PROVIDER)
            .firstOrNull { it in enabled } ?: return false
        // All four methods: before Android 10 they are abstract, and a lambda would
        // crash with AbstractMethodError when a provider is switched off.
        val l = object : LocationListener {
            override fun onLocationChanged(location: Location) {
                fixes.trySend(location.toGeoPoint())
            }
            override fun onProviderEnabled(provider: String) = Unit
            override fun onProviderDisabled(provider: String) = Unit
            @Deprecated("Deprecated in Java")
            override fun onStatusChanged(provider: String?, status: Int, extras: Bundle?) = Unit
        }
        listener = l
        manager.requestLocationUpdates(provider, INTERVAL_MS, MIN_DISTANCE_M, l, Looper.getMainLooper())
        return true
    }

    override fun onDestroy() {
        listener?.let { getSystemService(LocationManager::class.java)?.removeUpdates(it) }
        listener = null
        fixes.close()
        scope.cancel()
        // Write what the recorder holds; the app's scope outlives this service.
        val recorder = app.recorder
        app.scope.launch {
            try {
                recorder.flush()
            } catch (e: Exception) {
                // Kept in memory for the next write.
            }
        }
        super.onDestroy()
    }

    companion object {
        private const val INTERVAL_MS = 5_000L
        private const val MIN_DISTANCE_M = 5f

        /**
         * Start recording, from the visible app (a location service may not be
         * started from the background). False if it could not be started.
         */
        fun start(context: Context): Boolean {
            if (!hasLocationPermission(context)) return false
            return try {
                ContextCompat.startForegroundService(context, Intent(context, PatrolLocationService::class.java))
                true
            } catch (e: RuntimeException) {
                // ForegroundServiceStartNotAllowedException (Android 12+), IllegalStateException before.
                false
            }
        }
    }
}

/** Whether the app may read the location (fine or coarse). */
fun hasLocationPermission(context: Context): Boolean =
    ContextCompat.checkSelfPermission(context, android.Manifest.permission.ACCESS_FINE_LOCATION) ==
        android.content.pm.PackageManager.PERMISSION_GRANTED ||
        ContextCompat.checkSelfPermission(context, android.Manifest.permission.ACCESS_COARSE_LOCATION) ==
        android.content.pm.PackageManager.PERMISSION_GRANTED

internal fun Location.toGeoPoint() = GeoPoint(latitude, longitude, time)
