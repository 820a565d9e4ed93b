package cn.gridsync.demo.logic

import uniffi.gridsync_ffi.GridsyncException

/**
 * Every message the logic layer shows to the user. The Chinese text is the default;
 * the Android app maps each key to a string resource (`msg_<name in lower case>`) so
 * other languages can be added without touching the logic.
 */
enum class UiMessage(val zh: String) {
    SERVER_URL_REQUIRED("请填写服务器地址"),
    SERVER_URL_INVALID("服务器地址应以 http:// 或 https:// 开头"),
    PLAIN_HTTP_REFUSED("明文 HTTP 只能连接本机、模拟器或局域网 IP 地址上的测试服务器，其他服务器请使用 https://"),
    CODE_REQUIRED("请填写注册码"),
    QR_NOT_ENROLLMENT("扫描的二维码不是设备注册码"),
    CODE_REJECTED("注册码无效或已被使用，请向管理员重新申请"),
    ENROLLED("设备注册成功"),
    NOT_ENROLLED("设备尚未注册"),
    OFFLINE("网络不可用，数据已保存在本机，联网后再同步"),
    SYNC_DONE("同步完成"),
    SYNC_REJECTED("部分变更被服务器拒绝，请查看事件详情"),
    REENROLL_NEEDED("登录已失效，请重新注册设备"),
    DEVICE_REVOKED("本设备已被停用，请联系管理员"),
    DEVICE_WIPED("本设备已被指挥中心注销，本机数据已清除。如需继续使用，请重新注册"),
    SIGNED_OUT_ERASED("已退出，本机数据和密钥已清除。如需继续使用，请重新注册"),
    KEY_MISMATCH("本机数据无法用本机密钥解密，请重新注册设备"),
    TITLE_REQUIRED("请填写事件标题"),
    TITLE_TOO_LONG("事件标题不能超过200字"),
    DESCRIPTION_TOO_LONG("事件描述不能超过5000字"),
    ADDRESS_TOO_LONG("地址不能超过200字"),
    CATEGORY_REQUIRED("请选择事件类别"),
    PHOTO_REJECTED("照片无法使用，请重新拍摄"),
    REPORT_SAVED("事件已保存，将在联网后同步"),
    PATROL_STARTED("巡查已开始"),
    PATROL_ENDED("巡查已结束"),
    NO_ACTIVE_PATROL("当前没有进行中的巡查"),
    NOT_ALLOWED("无权执行此操作"),
    NOT_FOUND("未找到该记录"),
    INVALID_INPUT("输入有误，请检查后重试"),
    STORAGE_FAILED("本机存储出错，请重启应用"),
    FAILED("操作失败，请重试"),
}

/**
 * A message for the user, with the engine's own reason (English, never personal
 * data) kept as [detail] for a "details" line or a bug report.
 */
data class Notice(val message: UiMessage, val detail: String? = null) {
    /** The Chinese text. */
    val zh: String get() = message.zh
}

/** The notice an error from the engine should show. */
fun Throwable.toNotice(): Notice = when (this) {
    is GridsyncException.Network -> Notice(UiMessage.OFFLINE, reason)
    is GridsyncException.Unauthorized ->
        Notice(if (wipe) UiMessage.DEVICE_REVOKED else UiMessage.REENROLL_NEEDED, reason)
    is GridsyncException.NotFound -> Notice(UiMessage.NOT_FOUND, reason)
    is GridsyncException.Refused -> Notice(UiMessage.NOT_ALLOWED, reason)
    is GridsyncException.InvalidInput -> Notice(UiMessage.INVALID_INPUT, reason)
    is GridsyncException.Storage -> Notice(UiMessage.STORAGE_FAILED, reason)
    is GridsyncException.WrongKey -> Notice(UiMessage.KEY_MISMATCH, reason)
    is GridsyncException.Wiped -> Notice(UiMessage.DEVICE_WIPED, reason)
    is GridsyncException.Closed -> Notice(UiMessage.NOT_ENROLLED, message)
    is NotEnrolledException -> Notice(UiMessage.NOT_ENROLLED)
    else -> Notice(UiMessage.FAILED, message)
}

/** Thrown by the repository when there is no engine yet (the device is not enrolled). */
class NotEnrolledException : IllegalStateException("the device is not enrolled")
