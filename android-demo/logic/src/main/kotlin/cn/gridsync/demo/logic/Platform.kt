package cn.gridsync.demo.logic

import kotlinx.coroutines.flow.StateFlow

/**
 * A small durable key-value store: SharedPreferences on Android, a map in tests.
 * Holds only what reopens the database (user, device, server URL) and the app's own
 * bookkeeping; the device token stays inside the engine's database.
 */
interface SettingsStore {
    /** The value stored under [key], or null. */
    fun get(key: String): String?

    /** Store [value] under [key]; null removes it. Must be durable when it returns. */
    fun put(key: String, value: String?)
}

/** Whether the platform thinks there is a usable network (ConnectivityManager on Android). */
interface Connectivity {
    /** True while a network with internet is available. */
    val online: StateFlow<Boolean>
}

/** Wall-clock time in milliseconds since the epoch (injected so tests can pin it). */
fun interface Clock {
    /** Now. */
    fun nowMs(): Long

    companion object {
        /** The system clock. */
        val System: Clock = Clock { java.lang.System.currentTimeMillis() }
    }
}

/** One location fix from the platform. Personal data: never logged. */
data class GeoPoint(val lat: Double, val lon: Double, val atMs: Long)
