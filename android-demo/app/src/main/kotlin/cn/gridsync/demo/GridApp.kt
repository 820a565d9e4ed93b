package cn.gridsync.demo

import android.app.Application
import cn.gridsync.demo.logic.Connectivity
import cn.gridsync.demo.logic.GridRepository
import cn.gridsync.demo.platform.AndroidConnectivity
import cn.gridsync.demo.platform.AndroidKeyStore
import cn.gridsync.demo.platform.AndroidSettings
import cn.gridsync.demo.platform.LocationTracker
import java.io.File
import kotlinx.coroutines.Dispatchers

/**
 * One engine per process: the repository owns it, the screens' view-models share it.
 * The database lives in the app's private files (`files/gridsync/`), never on
 * shared storage; `allowBackup` is off so it is not copied off the phone either.
 * It is encrypted under a key the Android Keystore wraps ([AndroidKeyStore]).
 */
class GridApp : Application() {
    val repository: GridRepository by lazy {
        GridRepository(
            dataDir = File(filesDir, "gridsync"),
            settings = AndroidSettings(this),
            keys = AndroidKeyStore(this),
            io = Dispatchers.IO,
            appVersion = "android-demo/${BuildConfig.VERSION_NAME}",
        )
    }

    val connectivity: Connectivity by lazy { AndroidConnectivity(this) }

    val location: LocationTracker by lazy { LocationTracker(this) }
}
