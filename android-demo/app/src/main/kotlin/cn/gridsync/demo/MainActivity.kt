package cn.gridsync.demo

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import cn.gridsync.demo.ui.AppRoot
import cn.gridsync.demo.ui.GridSyncTheme

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        val app = application as GridApp
        setContent {
            GridSyncTheme {
                AppRoot(app)
            }
        }
    }
}
