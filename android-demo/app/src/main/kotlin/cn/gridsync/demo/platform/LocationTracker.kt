package cn.gridsync.demo.platform

import android.annotation.SuppressLint
import android.content.Context
import android.content.pm.PackageManager
import android.location.Location
import android.location.LocationListener
import android.location.LocationManager
import android.os.Bundle
import android.os.Looper
import cn.gridsync.demo.logic.GeoPoint

/**
 * GPS fixes from the platform LocationManager (no Google Play services, which many
 * phones sold in China lack). Fixes go straight to the view-models and the engine;
 * they are personal data and never logged.
 *
 * The demo tracks while the app is in the foreground. A production app records the
 * track of a two-hour patrol in a foreground service of type `location`.
 */
class LocationTracker(context: Context) {
    private val appContext = context.applicationContext
    private val manager = appContext.getSystemService(LocationManager::class.java)
    private var listener: LocationListener? = null

    fun hasPermission(): Boolean =
        appContext.checkSelfPermission(android.Manifest.permission.ACCESS_FINE_LOCATION) ==
            PackageManager.PERMISSION_GRANTED

    /**
     * Start delivering live fixes (every 5 s or 5 m) on the main thread, from GPS, or
     * from the network provider when GPS is off.
     */
    @SuppressLint("MissingPermission") // checked by hasPermission()
    fun start(onFix: (GeoPoint) -> Unit) {
        if (listener != null || !hasPermission()) return
        val enabled = manager.getProviders(true)
        val provider = listOf(LocationManager.GPS_PROVIDER, LocationManager.NETWORK_PROVIDER)
            .firstOrNull { it in enabled } ?: return
        // All four methods: before Android 10 they are abstract, and a lambda would
        // crash with AbstractMethodError when a provider is switched off.
        val l = object : LocationListener {
            override fun onLocationChanged(location: Location) = onFix(location.toGeoPoint())
            override fun onProviderEnabled(provider: String) = Unit
            override fun onProviderDisabled(provider: String) = Unit
            @Deprecated("Deprecated in Java")
            override fun onStatusChanged(provider: String?, status: Int, extras: Bundle?) = Unit
        }
        listener = l
        manager.requestLocationUpdates(provider, INTERVAL_MS, MIN_DISTANCE_M, l, Looper.getMainLooper())
    }

    /**
     * The last fix the platform knows, for a report made before a live fix arrives.
     * Never fed into a patrol track: it may be old.
     */
    @SuppressLint("MissingPermission") // checked by hasPermission()
    fun lastKnown(): GeoPoint? {
        if (!hasPermission()) return null
        return manager.getProviders(true)
            .mapNotNull { manager.getLastKnownLocation(it) }
            .maxByOrNull { it.time }
            ?.toGeoPoint()
    }

    private fun Location.toGeoPoint() = GeoPoint(latitude, longitude, time)

    fun stop() {
        listener?.let { manager.removeUpdates(it) }
        listener = null
    }

    private companion object {
        const val INTERVAL_MS = 5_000L
        const val MIN_DISTANCE_M = 5f
    }
}
