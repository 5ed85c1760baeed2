//! The words of notification messages, in Simplified Chinese and English.

use crate::store::notify_outbox::NotifyChange;
use crate::web::i18n::Lang;
use dustwatch_protocol::Severity;

pub struct Texts {
    pub alert: &'static str,
    pub site: &'static str,
    pub street: &'static str,
    pub rule: &'static str,
    pub severity: &'static str,
    pub state: &'static str,
    pub opened_at: &'static str,
    pub acknowledged_by: &'static str,
    pub details: &'static str,
}

pub const ZH: Texts = Texts {
    alert: "告警",
    site: "工地",
    street: "街道",
    rule: "规则",
    severity: "级别",
    state: "状态",
    opened_at: "开始时间",
    acknowledged_by: "确认人",
    details: "详情",
};

pub const EN: Texts = Texts {
    alert: "Alert",
    site: "Site",
    street: "Street",
    rule: "Rule",
    severity: "Severity",
    state: "State",
    opened_at: "Opened",
    acknowledged_by: "Acknowledged by",
    details: "Details",
};

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// What happened to the alert, as a person reads it.
pub fn change(lang: Lang, change: NotifyChange) -> &'static str {
    match (lang, change) {
        (Lang::Zh, NotifyChange::Opened) => "新告警",
        (Lang::Zh, NotifyChange::Reactivated) => "告警再次触发",
        (Lang::Zh, NotifyChange::Escalated) => "告警升级",
        (Lang::Zh, NotifyChange::Cleared) => "告警已消除(待复核)",
        (Lang::Zh, NotifyChange::Closed) => "告警已关闭",
        (Lang::Zh, NotifyChange::Acknowledged) => "告警已确认",
        (Lang::En, NotifyChange::Opened) => "Alert opened",
        (Lang::En, NotifyChange::Reactivated) => "Alert active again",
        (Lang::En, NotifyChange::Escalated) => "Alert escalated",
        (Lang::En, NotifyChange::Cleared) => "Alert cleared (re-check running)",
        (Lang::En, NotifyChange::Closed) => "Alert closed",
        (Lang::En, NotifyChange::Acknowledged) => "Alert acknowledged",
    }
}

pub fn severity(lang: Lang, s: Severity) -> &'static str {
    match (lang, s) {
        (Lang::Zh, Severity::Info) => "提示",
        (Lang::Zh, Severity::Warning) => "警告",
        (Lang::Zh, Severity::Violation) => "违规",
        (Lang::Zh, Severity::Critical) => "严重",
        (Lang::En, s) => s.name(),
    }
}
