//! An alert's evidence in words and units for the pages: times in the configured zone, limits and
//! means with their units, device and metric as written. The API keeps the raw JSON.

use super::i18n::Lang;
use super::layout::Ui;
use serde_json::Value;

/// Label and unit of an evidence key, by language; `None` for keys shown as they are.
fn describe(lang: Lang, key: &str) -> Option<(&'static str, Unit)> {
    let zh = lang == Lang::Zh;
    let pick = |z: &'static str, e: &'static str| if zh { z } else { e };
    // Window rules judge PM concentrations.
    let conc = Unit::Text("µg/m³");
    Some(match key {
        "metric" => (pick("指标", "metric"), Unit::None),
        "device" => (pick("设备", "device"), Unit::None),
        "value" => (pick("测值", "value"), conc),
        "site_mean" => (pick("站点均值", "site mean"), conc),
        "reference_mean" => (pick("参照点均值", "reference mean"), conc),
        "limit" => (pick("限值", "limit"), conc),
        "window_min" => (pick("窗口", "window"), Unit::Text(pick("分钟", "min"))),
        "window_start" => (pick("窗口开始", "window from"), Unit::Time),
        "window_end" => (pick("窗口结束", "window to"), Unit::Time),
        "first_active" => (pick("首次作业", "first activity"), Unit::Time),
        "last_active" => (pick("末次作业", "last activity"), Unit::Time),
        "last_ts" => (pick("最后数据", "last data"), Unit::Time),
        "silent_s" => (pick("中断时长", "silent for"), Unit::Seconds),
        "exceedances_today" => (pick("今日超标次数", "exceedances today"), Unit::None),
        "daily_budget" => (pick("每日允许次数", "daily allowance"), Unit::None),
        "leq_dba" => (pick("等效声级", "Leq"), Unit::Text("dB(A)")),
        "limit_dba" => (pick("噪声限值", "noise limit"), Unit::Text("dB(A)")),
        "max_noise_dba" => (pick("最大噪声", "max noise"), Unit::Text("dB(A)")),
        "max_pm10_increment" => (pick("PM10最大增量", "max PM10 increment"), conc),
        "active_minutes" => (pick("作业时长", "active"), Unit::Text(pick("分钟", "min"))),
        "runs" => (pick("洒水次数", "sprinkling runs"), Unit::None),
        "min_runs" => (pick("最少次数", "required runs"), Unit::None),
        "readings" => (pick("读数个数", "readings"), Unit::None),
        "level" | "level_max" => (pick("预警级别", "level"), Unit::Level),
        "period" => (pick("时段", "period"), Unit::Period),
        "activity" => (pick("作业", "activity"), Unit::None),
        "fault" => (pick("故障", "fault"), Unit::None),
        "date" => (pick("日期", "date"), Unit::None),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Unit {
    None,
    Text(&'static str),
    Time,
    Seconds,
    Level,
    Period,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// `label value unit` pairs joined by `; ` (plain text: the template escapes it).
pub fn words(ui: Ui, evidence: &Value) -> String {
    let Value::Object(m) = evidence else {
        return match evidence {
            Value::Null => String::new(),
            other => other.to_string(),
        };
    };
    m.iter()
        .filter(|(_, v)| !v.is_null())
        .take(8)
        .map(|(k, v)| match describe(ui.lang, k) {
            None => format!("{k} {}", scalar(v)),
            Some((label, unit)) => {
                let shown = match unit {
                    Unit::None => scalar(v),
                    Unit::Text(u) => format!("{} {u}", scalar(v)),
                    Unit::Time => ui.time(v.as_i64()),
                    Unit::Seconds => v.as_i64().map_or_else(|| scalar(v), duration),
                    Unit::Level => ui.lang.level_word(&scalar(v)),
                    Unit::Period => match (ui.lang, v.as_str()) {
                        (Lang::Zh, Some("day")) => "昼间".into(),
                        (Lang::Zh, Some("night")) => "夜间".into(),
                        _ => scalar(v),
                    },
                };
                format!("{label} {shown}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `1 h 05 min`, `3 min 20 s`.
fn duration(s: i64) -> String {
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {sec:02} s")
    } else {
        format!("{sec} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_evidence_reads_as_words_with_units_and_local_times() {
        let ui = Ui {
            lang: Lang::Zh,
            tz: chrono_tz::Asia::Shanghai,
        };
        let ev = serde_json::json!({"metric": "pm10", "value": 212.5, "limit": 150,
            "window_end": 1_764_400_000_000_i64, "silent_s": 3725});
        let w = words(ui, &ev);
        assert!(w.contains("测值 212.5 µg/m³"), "{w}");
        assert!(w.contains("限值 150 µg/m³"), "{w}");
        assert!(w.contains("窗口结束 2025-11-29 15:06"), "{w}");
        assert!(w.contains("中断时长 1 h 02 min"), "{w}");
        assert!(!w.contains("1764400000000"), "{w}");
    }
}
