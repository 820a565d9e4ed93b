package cn.gridsync.demo.ui

import androidx.compose.runtime.Composable
import androidx.compose.runtime.RememberObserver
import androidx.compose.runtime.remember
import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel

/**
 * An androidx ViewModel that only holds one of the logic layer's plain view-models,
 * built on [viewModelScope]: it survives rotation and is cancelled with the screen.
 */
class LogicHolder<T : Any>(create: (CoroutineScope) -> T) : ViewModel() {
    val logic: T = create(viewModelScope)
}

/** The logic view-model of type [T] for this activity, created once. */
@Composable
inline fun <reified T : Any> rememberLogic(noinline create: (CoroutineScope) -> T): T =
    viewModel<LogicHolder<T>>(key = T::class.java.name) { LogicHolder(create) }.logic

/**
 * A logic view-model that lives only while it is composed with this [key] (the case
 * detail: one per opened case, dropped when it is closed).
 */
@Composable
fun <T : Any> rememberScopedLogic(key: Any, create: (CoroutineScope) -> T): T =
    remember(key) { ScopedLogic(create) }.logic

class ScopedLogic<T : Any>(create: (CoroutineScope) -> T) : RememberObserver {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Main.immediate)
    val logic: T = create(scope)

    override fun onRemembered() = Unit
    override fun onForgotten() = scope.cancel()
    override fun onAbandoned() = scope.cancel()
}
