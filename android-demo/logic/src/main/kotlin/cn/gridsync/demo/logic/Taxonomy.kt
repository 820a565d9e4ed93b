package cn.gridsync.demo.logic

/** A case category or subcategory: the code the engine stores and the name people see. */
data class Category(val code: String, val name: String, val subcategories: List<Category> = emptyList())

/**
 * The six default domains and their subcategories, as in the sample directory
 * (`core/data/sample-directory.json`). The bindings do not expose the loaded
 * directory's taxonomy yet, so a server with another taxonomy needs this list
 * changed to match; the engine refuses codes its directory does not know.
 */
object Taxonomy {
    val DEFAULT: List<Category> = listOf(
        Category("city", "城市管理", listOf(
            Category("city.garbage", "垃圾堆放"),
            Category("city.illegal_building", "违章搭建"),
            Category("city.street_vendor", "占道经营"),
            Category("city.illegal_parking", "乱停乱放"),
            Category("city.road_damage", "道路破损"),
            Category("city.streetlight", "路灯损坏"),
        )),
        Category("safety", "安全生产", listOf(
            Category("safety.fire_exit", "消防通道堵塞"),
            Category("safety.gas", "燃气隐患"),
            Category("safety.electrical", "私拉乱接电线"),
            Category("safety.ebike_charging", "电动车违规充电"),
            Category("safety.hazmat", "危化品隐患"),
            Category("safety.construction", "施工安全隐患"),
        )),
        Category("security", "社会治安", listOf(
            Category("security.theft", "盗窃线索"),
            Category("security.fraud", "电信诈骗"),
            Category("security.suspicious", "可疑人员"),
            Category("security.gambling", "赌博线索"),
            Category("security.public_order", "扰乱公共秩序"),
        )),
        Category("petition", "信访稳定", listOf(
            Category("petition.wage_arrears", "拖欠工资"),
            Category("petition.land", "征地拆迁"),
            Category("petition.group", "群体性诉求"),
            Category("petition.repeat", "重复信访"),
            Category("petition.risk", "稳定风险隐患"),
        )),
        Category("dispute", "矛盾纠纷调解", listOf(
            Category("dispute.neighbor", "邻里纠纷"),
            Category("dispute.family", "婚姻家庭纠纷"),
            Category("dispute.property", "物业纠纷"),
            Category("dispute.land", "土地纠纷"),
            Category("dispute.labor", "劳资纠纷"),
            Category("dispute.consumer", "消费纠纷"),
        )),
        Category("livelihood", "民生服务", listOf(
            Category("livelihood.elderly", "独居老人帮扶"),
            Category("livelihood.water_leak", "管道漏水"),
            Category("livelihood.utility_outage", "停水停电"),
            Category("livelihood.disability", "残疾人帮扶"),
            Category("livelihood.hardship", "困难群众救助"),
        )),
    )
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
