package cn.gridsync.demo.platform

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import cn.gridsync.demo.logic.Connectivity
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

/**
 * The default network from ConnectivityManager. "Online" means a network that claims
 * internet access; whether the town server is reachable is learnt from the sync
 * itself (a Network error marks the bar offline too).
 */
class AndroidConnectivity(context: Context) : Connectivity {
    private val manager = context.getSystemService(ConnectivityManager::class.java)
    private val state = MutableStateFlow(hasInternet(manager.getNetworkCapabilities(manager.activeNetwork)))
    override val online: StateFlow<Boolean> = state.asStateFlow()

    init {
        // Lives as long as the process (created once, in GridApp).
        manager.registerDefaultNetworkCallback(object : ConnectivityManager.NetworkCallback() {
            override fun onCapabilitiesChanged(network: Network, capabilities: NetworkCapabilities) {
                state.value = hasInternet(capabilities)
            }

            override fun onLost(network: Network) {
                state.value = false
            }

            override fun onUnavailable() {
                state.value = false
            }
        })
    }

    private fun hasInternet(capabilities: NetworkCapabilities?): Boolean =
        capabilities?.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) == true
}
