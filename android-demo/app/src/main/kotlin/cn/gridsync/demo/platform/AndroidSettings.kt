package cn.gridsync.demo.platform

import android.content.Context
import cn.gridsync.demo.logic.SettingsStore

/**
 * SharedPreferences behind the logic's [SettingsStore]. Writes use `commit()`: the
 * repository calls this on its IO dispatcher and relies on the value being on disk.
 */
class AndroidSettings(context: Context) : SettingsStore {
    private val prefs = context.getSharedPreferences("gridsync", Context.MODE_PRIVATE)

    override fun get(key: String): String? = prefs.getString(key, null)

    override fun put(key: String, value: String?) {
        val editor = prefs.edit()
        if (value == null) editor.remove(key) else editor.putString(key, value)
        editor.commit()
    }
}
