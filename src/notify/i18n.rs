//! The words of notification messages, in Simplified Chinese and English.

use crate::web::i18n::Lang;

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
pub fn change(lang: Lang, change: &str) -> &'static str {
    match (lang, change) {
        (Lang::Zh, "opened") => "新告警",
        (Lang::Zh, "reactivated") => "告警再次触发",
        (Lang::Zh, "escalated") => "告警升级",
        (Lang::Zh, "cleared") => "告警已消除(待复核)",
        (Lang::Zh, "closed") => "告警已关闭",
        (Lang::Zh, "acknowledged") => "告警已确认",
        (Lang::Zh, _) => "告警变更",
        (Lang::En, "opened") => "Alert opened",
        (Lang::En, "reactivated") => "Alert active again",
        (Lang::En, "escalated") => "Alert escalated",
        (Lang::En, "cleared") => "Alert cleared (re-check running)",
        (Lang::En, "closed") => "Alert closed",
        (Lang::En, "acknowledged") => "Alert acknowledged",
        (Lang::En, _) => "Alert changed",
    }
}

pub fn severity(lang: Lang, s: &str) -> String {
    match (lang, s) {
        (Lang::Zh, "info") => "提示".into(),
        (Lang::Zh, "warning") => "警告".into(),
        (Lang::Zh, "violation") => "违规".into(),
        (Lang::Zh, "critical") => "严重".into(),
        _ => s.to_string(),
    }
}
