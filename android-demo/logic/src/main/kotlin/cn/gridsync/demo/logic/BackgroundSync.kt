package cn.gridsync.demo.logic

import kotlinx.coroutines.CancellationException
import uniffi.gridsync_ffi.GridsyncException

/** What one background sync came to, and so what the scheduler should do next. */
enum class BackgroundSyncOutcome {
    /** Synced. */
    SYNCED,

    /** The server could not be reached (or something passing went wrong): try again later. */
    RETRY,

    /** The relay revoked the device: its data is erased and the app is back at enrollment. */
    ERASED,

    /** No enrolled device (never enrolled, or erased meanwhile): background sync is cancelled. */
    NOT_ENROLLED,

    /** Retrying will not help (the token is refused, the key does not open the database…): the app says why when opened. */
    FAILED,
}

/**
 * One sync without a screen: what Android's `SyncWorker` (WorkManager) runs. The
 * process may have been started just for it, so the device is restored first. A
 * `Wiped` answer goes through the repository's one erase path, as it does for the
 * sync bar: key deleted, settings cleared, background sync cancelled, enrollment
 * shown (with its notice) the next time the app is opened.
 */
class BackgroundSync(private val repo: GridRepository, private val scheduler: SyncScheduler) {
    /** Restore if needed, then sync once. Never throws except for cancellation. */
    suspend fun run(): BackgroundSyncOutcome {
        val session = try {
            repo.session.value ?: repo.restore()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            // WrongKey and the like: the database stays as it is; the screen explains.
            return BackgroundSyncOutcome.FAILED
        }
        if (session == null) {
            scheduler.cancel()
            return BackgroundSyncOutcome.NOT_ENROLLED
        }
        return try {
            repo.sync { }
            BackgroundSyncOutcome.SYNCED
        } catch (e: CancellationException) {
            throw e
        } catch (e: GridsyncException.Wiped) {
            BackgroundSyncOutcome.ERASED
        } catch (e: NotEnrolledException) {
            // Erased by another sync or by the user while this one waited.
            BackgroundSyncOutcome.NOT_ENROLLED
        } catch (e: GridsyncException.Network) {
            BackgroundSyncOutcome.RETRY
        } catch (e: GridsyncException.Other) {
            BackgroundSyncOutcome.RETRY
        } catch (e: Exception) {
            BackgroundSyncOutcome.FAILED
        }
    }
}
