package cn.gridsync.demo.logic

import uniffi.gridsync_ffi.DirectoryRecord

/** A case category or subcategory: the code the engine stores and the name people see. */
data class Category(val code: String, val name: String, val subcategories: List<Category> = emptyList())

/** The directory's categories as the report form offers them (Chinese names). */
fun DirectoryRecord.taxonomy(): List<Category> = categories.map { c ->
    Category(c.code, c.name, c.subcategories.map { Category(it.code, it.name) })
}

/**
 * Severity levels the engine accepts. [zh] is the default label; the app maps each to
 * a string resource (`severity_<code>`).
 */
enum class Severity(val code: String, val zh: String) {
    LOW("low", "轻微"),
    NORMAL("normal", "一般"),
    HIGH("high", "严重"),
    URGENT("urgent", "紧急"),
}
