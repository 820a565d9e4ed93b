//! The console's words, Simplified Chinese first, English switchable. One struct,
//! so a missing translation is a compile error.

use gridsync_core::{Action, Severity, Status};

/// A console language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Simplified Chinese, the default.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From the `gs_lang` cookie's value; Chinese unless it says `en`.
    pub fn from_cookie(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// The cookie value and the `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The words of this language.
    pub fn t(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// A status as people call it.
    pub fn status(self, s: Status) -> &'static str {
        match self {
            Lang::Zh => s.label_zh(),
            Lang::En => match s {
                Status::Reported => "Reported",
                Status::Accepted => "Accepted",
                Status::Dispatched => "Being handled",
                Status::Handled => "To verify",
                Status::Verified => "To archive",
                Status::Archived => "Archived",
                Status::Evaluated => "Evaluated",
                Status::Invalid => "Invalid",
            },
        }
    }

    /// A severity.
    pub fn severity(self, s: Severity) -> &'static str {
        match (self, s) {
            (Lang::Zh, Severity::Low) => "轻微",
            (Lang::Zh, Severity::Normal) => "一般",
            (Lang::Zh, Severity::High) => "严重",
            (Lang::Zh, Severity::Urgent) => "紧急",
            (Lang::En, Severity::Low) => "Low",
            (Lang::En, Severity::Normal) => "Normal",
            (Lang::En, Severity::High) => "High",
            (Lang::En, Severity::Urgent) => "Urgent",
        }
    }

    /// A timeline entry's action.
    pub fn action(self, a: &Action) -> &'static str {
        match self {
            Lang::Zh => a.label_zh(),
            Lang::En => match a {
                Action::Report { .. } => "Reported",
                Action::Accept => "Accepted",
                Action::SelfHandle { .. } => "Handled on the spot",
                Action::Dispatch { .. } => "Dispatched",
                Action::Feedback { .. } => "Handling reported",
                Action::Return { .. } => "Returned",
                Action::Verify { passed: true, .. } => "Verified",
                Action::Verify { passed: false, .. } => "Verification failed",
                Action::Archive => "Archived",
                Action::Evaluate { .. } => "Evaluated",
                Action::Escalate { .. } => "Escalated",
                Action::Urge { .. } => "Supervision raised",
                Action::Invalidate { .. } => "Marked invalid",
            },
        }
    }
}

/// Every fixed text of the console.
pub struct Texts {
    pub title: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub user_name: &'static str,
    pub password: &'static str,
    pub wrong_password: &'static str,
    pub switch_lang: &'static str,
    pub cases: &'static str,
    pub all: &'static str,
    pub status: &'static str,
    pub grid: &'static str,
    pub category: &'static str,
    pub severity: &'static str,
    pub overdue: &'static str,
    pub overdue_only: &'static str,
    pub search: &'static str,
    pub filter: &'static str,
    pub case_title: &'static str,
    pub deadline: &'static str,
    pub reported_at: &'static str,
    pub department: &'static str,
    pub no_cases: &'static str,
    pub next_page: &'static str,
    pub prev_page: &'static str,
    pub description: &'static str,
    pub location: &'static str,
    pub people: &'static str,
    pub photos: &'static str,
    pub no_photos: &'static str,
    pub photo_pending: &'static str,
    pub timeline: &'static str,
    pub notes: &'static str,
    pub add_note: &'static str,
    pub actions: &'static str,
    pub no_actions: &'static str,
    pub supervision: &'static str,
    pub reporter: &'static str,
    pub conflict: &'static str,
    pub refused: &'static str,
    pub deadline_hours: &'static str,
    pub deadline_default: &'static str,
    pub satisfaction: &'static str,
    pub comment: &'static str,
    pub reason: &'static str,
    pub result: &'static str,
    pub passed: &'static str,
    pub not_passed: &'static str,
    pub level: &'static str,
    pub done: &'static str,
    pub not_found: &'static str,
    pub not_allowed: &'static str,
    pub bad_input: &'static str,
    pub server_error: &'static str,
    pub back_to_cases: &'static str,
    pub do_accept: &'static str,
    pub do_dispatch: &'static str,
    pub do_feedback: &'static str,
    pub do_return: &'static str,
    pub do_verify: &'static str,
    pub do_self_handle: &'static str,
    pub do_archive: &'static str,
    pub do_evaluate: &'static str,
    pub do_escalate: &'static str,
    pub do_urge: &'static str,
    pub do_invalidate: &'static str,
}

const ZH: Texts = Texts {
    title: "网格化管理指挥中心",
    sign_in: "登录",
    sign_out: "退出登录",
    user_name: "用户名",
    password: "密码",
    wrong_password: "用户名或密码错误",
    switch_lang: "English",
    cases: "案件",
    all: "全部",
    status: "状态",
    grid: "网格",
    category: "类别",
    severity: "紧急程度",
    overdue: "超期",
    overdue_only: "只看超期",
    search: "搜索",
    filter: "筛选",
    case_title: "标题",
    deadline: "处置时限",
    reported_at: "上报时间",
    department: "处置部门",
    no_cases: "没有符合条件的案件",
    next_page: "下一页",
    prev_page: "上一页",
    description: "描述",
    location: "位置",
    people: "相关人员",
    photos: "照片",
    no_photos: "无照片",
    photo_pending: "照片尚未上传",
    timeline: "处置过程（全程留痕）",
    notes: "备注",
    add_note: "添加备注",
    actions: "可执行操作",
    no_actions: "当前状态下您没有可执行的操作",
    supervision: "督办级别",
    reporter: "上报人",
    conflict: "冲突（离线并发操作，未生效）",
    refused: "未生效",
    deadline_hours: "时限（小时）",
    deadline_default: "留空按规则",
    satisfaction: "满意度（1–5）",
    comment: "说明",
    reason: "原因",
    result: "处置结果",
    passed: "通过",
    not_passed: "不通过",
    level: "级别（1–5）",
    done: "操作已完成，将在设备下次同步时送达",
    not_found: "没有这个案件，或您无权查看",
    not_allowed: "操作被拒绝",
    bad_input: "输入有误",
    server_error: "服务器出错，请稍后重试",
    back_to_cases: "返回案件列表",
    do_accept: "受理",
    do_dispatch: "派遣",
    do_feedback: "处置反馈",
    do_return: "退回",
    do_verify: "核查",
    do_self_handle: "自行处置",
    do_archive: "归档",
    do_evaluate: "回访评价",
    do_escalate: "上报上级",
    do_urge: "督办",
    do_invalidate: "作废",
};

const EN: Texts = Texts {
    title: "Grid management command centre",
    sign_in: "Sign in",
    sign_out: "Sign out",
    user_name: "User name",
    password: "Password",
    wrong_password: "Wrong user name or password",
    switch_lang: "中文",
    cases: "Cases",
    all: "All",
    status: "Status",
    grid: "Grid",
    category: "Category",
    severity: "Severity",
    overdue: "Overdue",
    overdue_only: "Overdue only",
    search: "Search",
    filter: "Filter",
    case_title: "Title",
    deadline: "Deadline",
    reported_at: "Reported",
    department: "Department",
    no_cases: "No cases match",
    next_page: "Next",
    prev_page: "Previous",
    description: "Description",
    location: "Location",
    people: "People",
    photos: "Photos",
    no_photos: "No photos",
    photo_pending: "Photo not uploaded yet",
    timeline: "Timeline (every step recorded)",
    notes: "Notes",
    add_note: "Add a note",
    actions: "Actions",
    no_actions: "You have no action on this case in its current state",
    supervision: "Supervision level",
    reporter: "Reported by",
    conflict: "Conflict (concurrent offline action, not applied)",
    refused: "Not applied",
    deadline_hours: "Deadline (hours)",
    deadline_default: "empty: by the rules",
    satisfaction: "Satisfaction (1–5)",
    comment: "Comment",
    reason: "Reason",
    result: "Result",
    passed: "Passed",
    not_passed: "Not passed",
    level: "Level (1–5)",
    done: "Done; devices receive it on their next sync",
    not_found: "No such case, or not yours to see",
    not_allowed: "Refused",
    bad_input: "Invalid input",
    server_error: "Server error; try again later",
    back_to_cases: "Back to the cases",
    do_accept: "Accept",
    do_dispatch: "Dispatch",
    do_feedback: "Report handled",
    do_return: "Return",
    do_verify: "Verify",
    do_self_handle: "Handle on the spot",
    do_archive: "Archive",
    do_evaluate: "Evaluate",
    do_escalate: "Escalate",
    do_urge: "Raise supervision",
    do_invalidate: "Mark invalid",
};
