//! The page language: Simplified Chinese by default, English selectable. Every word a page shows
//! comes from here; site and street names are shown as registered.
//!
//! A request's language: `?lang=` (remembered in a cookie by `remember`), else the `lang`
//! cookie, else the first supported language in `Accept-Language`, else `[http] language`.

use super::AppState;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "zh-CN")]
    Zh,
    #[serde(rename = "en")]
    En,
}

/// The cookie that remembers the switch on the page.
const COOKIE: &str = "lang";

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag, as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// `zh`, `zh-CN`, `zh-Hans`, `en`, `en-GB`, ... (case-insensitive).
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The supported language the browser prefers most, if any.
    pub fn from_accept_language(h: &str) -> Option<Lang> {
        let mut prefs: Vec<(f32, Lang)> = h
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let lang = Lang::parse(it.next()?)?;
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        // Stable: equal weights keep the browser's order.
        prefs.sort_by(|a, b| b.0.total_cmp(&a.0));
        prefs.first().map(|p| p.1)
    }

    pub fn t(self) -> &'static Strings {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// A warning level's name (无预警, 黄色预警, ...).
    pub fn level(self, level: dustwatch_protocol::Level) -> &'static str {
        use dustwatch_protocol::Level::*;
        let t = self.t();
        match level {
            None => t.level_none,
            Blue => t.level_blue,
            Yellow => t.level_yellow,
            Orange => t.level_orange,
            Red => t.level_red,
        }
    }

    /// A level as stored (`yellow`), or the stored word itself when unknown.
    pub fn level_word(self, word: &str) -> String {
        dustwatch_protocol::Level::ALL
            .iter()
            .find(|l| l.name() == word)
            .map_or_else(|| word.to_string(), |l| self.level(*l).to_string())
    }

    /// A site status (`ok`, `warning`, ... as the API spells it).
    pub fn status(self, status: &str) -> String {
        let t = self.t();
        match status {
            "ok" => t.st_ok,
            "warning" => t.st_warning,
            "violation" => t.st_violation,
            "offline" => t.st_offline,
            "unregistered" => t.st_unregistered,
            other => return other.to_string(),
        }
        .to_string()
    }

    /// An alert severity (`warning`, `violation`, `critical`, `info`).
    pub fn severity(self, severity: &str) -> String {
        let t = self.t();
        match severity {
            "info" => t.sev_info,
            "warning" => t.sev_warning,
            "violation" => t.sev_violation,
            "critical" => t.sev_critical,
            other => return other.to_string(),
        }
        .to_string()
    }

    /// An alert state filter or state (`open`, `active`, `cleared`, `closed`, `all`).
    pub fn alert_state(self, state: &str) -> String {
        let t = self.t();
        match state {
            "open" => t.as_open,
            "active" => t.as_active,
            "cleared" => t.as_cleared,
            "closed" => t.as_closed,
            "all" => t.as_all,
            other => return other.to_string(),
        }
        .to_string()
    }

    /// A rule's name from its id; per-device rules keep the device (`stuck-dev1`). Ids a profile
    /// invents are shown as written.
    pub fn rule(self, id: &str) -> String {
        let t = self.t();
        let fixed = match id {
            "pm10-hourly" => Some(t.rule_pm10_hourly),
            "tsp-hourly" => Some(t.rule_tsp_hourly),
            "pm10-increment-hourly" => Some(t.rule_pm10_increment_hourly),
            "night-activity" => Some(t.rule_night),
            "noise" => Some(t.rule_noise),
            "sprinkling" => Some(t.rule_sprinkling),
            "work-restriction" => Some(t.rule_work_restriction),
            "earthwork-restriction" => Some(t.rule_earth_restriction),
            _ => None,
        };
        if let Some(name) = fixed {
            return name.to_string();
        }
        for (prefix, name) in [
            ("stuck-", t.rule_stuck),
            ("flag-", t.rule_flag),
            ("gap-", t.rule_gap),
        ] {
            if let Some(rest) = id.strip_prefix(prefix) {
                return format!("{name} {rest}");
            }
        }
        id.to_string()
    }

    /// A site kind or construction phase word.
    pub fn kind(self, word: &str) -> String {
        let t = self.t();
        match word {
            "construction" => t.kind_construction,
            "road" => t.kind_road,
            "reference" => t.kind_reference,
            "earthwork" => t.ph_earthwork,
            "foundation" => t.ph_foundation,
            "structure" => t.ph_structure,
            "fitout" => t.ph_fitout,
            "idle" => t.ph_idle,
            other => return other.to_string(),
        }
        .to_string()
    }

    /// The HJ 633 category name of an AQI value.
    pub fn aqi_category(self, c: &crate::aqi::Category) -> &'static str {
        match self {
            Lang::Zh => c.name_zh,
            Lang::En => c.name,
        }
    }

    /// The words the page's script needs for live updates, as JSON.
    pub fn client_words(self) -> serde_json::Value {
        let t = self.t();
        let status: serde_json::Map<_, _> =
            ["ok", "warning", "violation", "offline", "unregistered"]
                .iter()
                .map(|s| (s.to_string(), self.status(s).into()))
                .collect();
        let level: serde_json::Map<_, _> = dustwatch_protocol::Level::ALL
            .iter()
            .map(|l| (l.name().to_string(), self.level(*l).into()))
            .collect();
        serde_json::json!({
            "status": status,
            "level": level,
            "live": t.live,
            "reconnecting": t.reconnecting,
            "open": t.open_suffix,
            "set_to": t.level_set_to,
        })
    }
}

macro_rules! strings {
    ($($field:ident: $zh:literal, $en:literal;)*) => {
        /// Every word of the pages, one field per phrase.
        #[derive(Debug)]
        pub struct Strings { $(pub $field: &'static str,)* }
        static ZH: Strings = Strings { $($field: $zh,)* };
        static EN: Strings = Strings { $($field: $en,)* };
    };
}

strings! {
    brand: "扬尘监测", "dustwatch";
    nav_overview: "总览", "Overview";
    nav_alerts: "告警", "Alerts";
    nav_report: "日报", "Daily report";
    nav_rankings: "排名", "Rankings";
    nav_dashboards: "看板", "Dashboards";
    switch_to: "English", "中文";
    city_level: "全市预警级别", "City warning level";
    level_none: "无预警", "no warning";
    level_blue: "蓝色预警", "blue warning";
    level_yellow: "黄色预警", "yellow warning";
    level_orange: "橙色预警", "orange warning";
    level_red: "红色预警", "red warning";
    level_since: "起始", "since";
    level_set: "设置级别", "Set level";
    level_set_to: "已设置为", "set to";
    write_token: "写入令牌", "write token";
    live: "实时", "live";
    reconnecting: "重新连接中", "reconnecting";
    times_in: "时间均为", "Times in";
    st_ok: "正常", "ok";
    st_warning: "预警", "warning";
    st_violation: "超标", "violation";
    st_offline: "离线", "offline";
    st_unregistered: "未登记", "unregistered";
    not_judged: "未判定", "not judged";
    sev_info: "提示", "info";
    sev_warning: "预警", "warning";
    sev_violation: "超标", "violation";
    sev_critical: "严重", "critical";
    as_open: "未关闭", "open";
    as_active: "进行中", "active";
    as_cleared: "已解除", "cleared";
    as_closed: "已关闭", "closed";
    as_all: "全部", "all";
    rule_pm10_hourly: "PM10小时均值超标", "PM10 hourly mean over limit";
    rule_tsp_hourly: "TSP 小时均值超标", "TSP hourly mean over limit";
    rule_pm10_increment_hourly: "PM10小时增量超标", "PM10 hourly increment over limit";
    rule_night: "夜间违规施工", "night-time work";
    rule_noise: "噪声超标", "noise over limit";
    rule_sprinkling: "洒水降尘不足", "too few sprinkling runs";
    rule_work_restriction: "管控期间施工", "work during a restriction";
    rule_earth_restriction: "管控期间土方作业", "earthwork during a restriction";
    rule_stuck: "传感器数值卡滞", "sensor stuck";
    rule_flag: "设备故障标记", "device fault flag";
    rule_gap: "数据中断", "data gap";
    kind_construction: "建筑工地", "construction";
    kind_road: "道路", "road";
    kind_reference: "参照点", "reference";
    ph_earthwork: "土方", "earthwork";
    ph_foundation: "基础", "foundation";
    ph_structure: "主体", "structure";
    ph_fitout: "装修", "fit-out";
    ph_idle: "停工", "idle";
    sites: "工地", "Sites";
    sites_n: "个站点", "sites";
    worst_first: "按严重程度排序", "worst first";
    map: "辖区地图", "District map";
    map_note: "按登记经纬度绘制", "drawn from the registered locations";
    no_location: "没有站点登记经纬度", "no site has a registered location";
    age: "数据延迟", "age";
    open_suffix: "条未关闭", "open";
    newest_reading: "最新读数", "newest reading";
    status: "状态", "status";
    street: "街道", "Street";
    site: "站点", "Site";
    name: "名称", "Name";
    no_data: "无数据", "no data";
    pm_over: "颗粒物浓度，时段", "PM over";
    chart_note: "阴影：告警时段；背景色带：全市预警级别；三角：洒水；直线：限值。",
        "Shaded: alert periods; background band: city warning level; triangles: sprinkling runs; lines: limits.";
    csv_1min: "CSV（1分钟）", "CSV (1-minute)";
    noise: "噪声", "noise";
    devices: "设备", "Devices";
    device: "设备", "Device";
    state: "状态", "State";
    firmware: "固件", "Firmware";
    boot: "启动次数", "Boot";
    interval: "上报间隔", "Interval";
    last_seen: "最后上报", "Last seen";
    alert_history: "告警记录", "Alert history";
    act_on_them: "（处理）", "(act on them)";
    rule: "规则", "Rule";
    severity: "级别", "Severity";
    opened: "开始", "Opened";
    updated: "更新", "updated";
    cleared: "解除", "Cleared";
    closed: "关闭", "Closed";
    acknowledged: "已确认", "Acknowledged";
    acknowledge: "确认", "Acknowledge";
    no: "否", "no";
    no_alerts: "无告警", "no alerts";
    no_alerts_match: "没有符合条件的告警", "no alerts match";
    alerts_shown: "条", "shown";
    all_sites: "全部站点", "all sites";
    filter: "筛选", "Filter";
    token_for_ack: "确认告警需输入写入令牌：", "Write token for acknowledging:";
    your_name: "姓名", "name";
    comment: "备注", "comment";
    closed_unacked: "已关闭，未确认", "closed unacknowledged";
    offences: "次", "offences";
    evidence: "依据", "evidence";
    report_title: "日报", "Daily report";
    report_final: "终版。", "Final.";
    report_prelim: "初版：按事件时间该日尚未结束。", "Preliminary: the day is still open in event time.";
    report_local_day: "本地日期，时区", "Local day in";
    sites_with_incidents: "有事件的站点", "sites with incidents";
    of: "/", "of";
    exceedance_min: "超标分钟", "Exceedance min";
    alerts_opened: "新开告警", "Alerts opened";
    sprinkling_runs: "洒水次数", "Sprinkling runs";
    data_pct: "数据完整率 %", "Data %";
    activity_min: "作业分钟", "Activity min";
    night_min: "夜间作业分钟", "Night activity min";
    highest_level: "最高预警级别", "Highest level";
    incidents: "事件", "Incidents";
    no_incident: "无事件", "No incident";
    kind: "类型", "Kind";
    date: "日期", "Date";
    rankings_title: "排名", "Rankings";
    rank_sites: "站点排名", "Sites";
    rank_streets: "街道排名", "Streets";
    rank_day: "日", "day";
    rank_week: "周", "week";
    rank_month: "月", "month";
    rank_score: "扣分", "Score";
    rank_from_to: "时段", "Period";
    rank: "名次", "Rank";
    not_found: "未找到", "Not found";
    bad_request: "请求有误", "Bad request";
    error: "出错了", "Error";
    back_home: "返回总览", "Back to the overview";
    aqi_calendar_title: "每日空气质量指数（HJ 633）", "Daily AQI (HJ 633)";
}

/// The request's language (never fails: falls back to the configured one).
#[axum::async_trait]
impl FromRequestParts<AppState> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Lang, Infallible> {
        Ok(of_request(parts.uri.query(), &parts.headers).unwrap_or(state.language))
    }
}

/// The language a request asks for, if it asks for one we have.
pub fn of_request(query: Option<&str>, headers: &axum::http::HeaderMap) -> Option<Lang> {
    query_lang(query)
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| {
                    let (k, v) = c.trim().split_once('=')?;
                    (k == COOKIE).then(|| Lang::parse(v)).flatten()
                })
        })
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "lang").then(|| Lang::parse(v)).flatten()
    })
}

/// The switch on the page (`?lang=en`) is remembered for a year.
pub async fn remember(request: Request, next: Next) -> Response {
    let chosen = query_lang(request.uri().query());
    let mut response = next.run(request).await;
    if let Some(lang) = chosen {
        let cookie = format!(
            "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            Lang::from_accept_language("fr, en-GB;q=0.7, zh;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.2, zh-TW;q=0.9"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("fr, de"), None);
    }

    #[test]
    fn levels_and_rules_have_chinese_names() {
        use dustwatch_protocol::Level;
        assert_eq!(Lang::Zh.level(Level::Red), "红色预警");
        assert_eq!(Lang::Zh.level(Level::None), "无预警");
        assert_eq!(Lang::Zh.level_word("yellow"), "黄色预警");
        assert_eq!(Lang::Zh.rule("stuck-dev-7"), "传感器数值卡滞 dev-7");
        assert_eq!(Lang::Zh.rule("my-own-rule"), "my-own-rule");
        assert_eq!(Lang::En.severity("violation"), "violation");
        assert_eq!(Lang::Zh.severity("violation"), "超标");
    }

    #[test]
    fn every_window_rule_of_the_shipped_profiles_has_a_name() {
        for file in ["rules/default.toml", "rules/hebei-db13-2934.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let profile = crate::rules::Profile::load(&path).expect("shipped profile");
            for w in &profile.windows {
                let id = &w.id;
                assert_ne!(
                    &Lang::Zh.rule(id),
                    id,
                    "{file}: rule `{id}` has no Chinese name"
                );
                assert_ne!(
                    &Lang::En.rule(id),
                    id,
                    "{file}: rule `{id}` has no English name"
                );
            }
        }
    }
}
