package cn.gridsync.demo.platform

import android.annotation.SuppressLint
import android.content.Context
import android.location.Location
import android.location.LocationManager
import android.os.CancellationSignal
import androidx.core.content.ContextCompat
import androidx.core.location.LocationManagerCompat
import androidx.core.util.Consumer
import cn.gridsync.demo.logic.GeoPoint
import kotlin.coroutines.resume
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withTimeoutOrNull

/**
 * One location for a case report made outside a patrol (during a patrol the report
 * form takes the service's fixes). Not a tracker: one request, answered once.
 */
object CurrentLocation {
    /**
     * The last fix the platform knows, for the form before a fresh one arrives.
     * Never fed into a patrol track: it may be old.
     */
    @SuppressLint("MissingPermission") // checked by hasLocationPermission()
    fun lastKnown(context: Context): GeoPoint? {
        if (!hasLocationPermission(context)) return null
        val manager = context.getSystemService(LocationManager::class.java) ?: return null
        return manager.getProviders(true)
            .mapNotNull { manager.getLastKnownLocation(it) }
            .maxByOrNull { it.time }
            ?.toGeoPoint()
    }

    /** A fresh fix from GPS (or the network provider), or null after [timeoutMs] or without permission. */
    @SuppressLint("MissingPermission") // checked by hasLocationPermission()
    suspend fun fresh(context: Context, timeoutMs: Long = 30_000): GeoPoint? {
        if (!hasLocationPermission(context)) return null
        val manager = context.getSystemService(LocationManager::class.java) ?: return null
        val enabled = manager.getProviders(true)
        val provider = listOf(LocationManager.GPS_PROVIDER, LocationManager.NETWORK_PROVIDER)
            .firstOrNull { it in enabled } ?: return null
        return withTimeoutOrNull(timeoutMs) {
            suspendCancellableCoroutine { continuation ->
                val signal = CancellationSignal()
                continuation.invokeOnCancellation { signal.cancel() }
                LocationManagerCompat.getCurrentLocation(
                    manager,
                    provider,
                    signal,
                    ContextCompat.getMainExecutor(context),
                    // The platform may answer null: no fix could be had.
                    Consumer<Location> { location ->
                        if (continuation.isActive) continuation.resume(location?.toGeoPoint())
                    },
                )
            }
        }
    }
}
