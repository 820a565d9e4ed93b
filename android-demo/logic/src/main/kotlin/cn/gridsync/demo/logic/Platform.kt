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

/**
 * Where each device's 32-byte root key lives, the key `GridEngine.open` encrypts the
 * database under: the Android Keystore on the phone (`app/…/platform/AndroidKeyStore.kt`),
 * a map in tests. One key per device id, so a database kept aside after enrolling
 * again stays readable with its own key.
 */
interface KeyStore {
    /** The key of [deviceId] in a new array (the caller clears it after use), or null. */
    fun load(deviceId: String): ByteArray?

    /**
     * Keep a copy of [key] for [deviceId], replacing any other (the caller clears
     * [key] after use). Must be durable when it returns.
     */
    fun save(deviceId: String, key: ByteArray)

    /** Forget the key of [deviceId] (its data was erased, or never committed). */
    fun delete(deviceId: String)
}

/**
 * Background sync as the platform runs it: WorkManager on Android (`app/…/platform/
 * WorkManagerSyncScheduler.kt`, running `SyncWorker`, which calls [BackgroundSync]),
 * a recorder in tests. Each call only asks; none of them syncs on the caller's thread.
 */
interface SyncScheduler {
    /** Keep a periodic background sync (every 15 minutes at best, with a network) for the enrolled device. */
    fun schedulePeriodic()

    /** Sync once, soon and in the background, when there is a network (after a report). */
    fun syncSoon()

    /** Cancel every background sync: the device was erased or is not enrolled. */
    fun cancel()

    companion object {
        /** No background sync (a test that does not care). */
        val None: SyncScheduler = object : SyncScheduler {
            override fun schedulePeriodic() = Unit
            override fun syncSoon() = Unit
            override fun cancel() = Unit
        }
    }
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
