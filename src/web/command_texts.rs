//! The words of the commands section and API answers, Simplified Chinese first.

use super::i18n::Lang;

pub struct CommandTexts {
    pub heading: &'static str,
    pub none: &'static str,
    pub sent: &'static str,
    pub device: &'static str,
    pub command: &'static str,
    pub by: &'static str,
    pub state: &'static str,
    pub answer: &'static str,
    pub how_to: &'static str,
    pub send: &'static str,
    pub sprinkle_min: &'static str,
    pub interval_s: &'static str,
    pub reboot: &'static str,
    pub amount: &'static str,
    pub write_token: &'static str,
}

pub const ZH: CommandTexts = CommandTexts {
    heading: "设备指令",
    none: "尚未向本工地的设备发送指令。",
    sent: "发送时间",
    device: "设备",
    command: "指令",
    by: "发送人",
    state: "状态",
    answer: "设备应答",
    how_to: "也可用命令行:dustwatch command <工地> <设备> sprinkle --duration 10m,或 POST /api/sites/<工地>/commands。",
    send: "发送",
    sprinkle_min: "立即喷淋(分钟)",
    interval_s: "上报间隔(秒)",
    reboot: "重启",
    amount: "数值",
    write_token: "写入令牌",
};

pub const EN: CommandTexts = CommandTexts {
    heading: "Device commands",
    none: "No command sent to this site's devices yet.",
    sent: "Sent",
    device: "Device",
    command: "Command",
    by: "By",
    state: "State",
    answer: "Device's answer",
    how_to: "Also from the command line: dustwatch command <site> <device> sprinkle --duration 10m, or POST /api/sites/<site>/commands.",
    send: "Send",
    sprinkle_min: "Sprinkle now (minutes)",
    interval_s: "Report interval (seconds)",
    reboot: "Reboot",
    amount: "Value",
    write_token: "write token",
};

pub fn texts(lang: Lang) -> &'static CommandTexts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// A command's state as shown.
pub fn state(lang: Lang, state: &str, ok: Option<bool>) -> &'static str {
    match (lang, state, ok) {
        (Lang::Zh, "sent", _) => "已发送,等待应答",
        (Lang::Zh, "answered", Some(false)) => "已应答:未执行",
        (Lang::Zh, "answered", _) => "已应答:已执行",
        (Lang::Zh, "timed_out", _) => "超时未应答",
        (Lang::Zh, _, _) => "未发出",
        (Lang::En, "sent", _) => "sent, awaiting answer",
        (Lang::En, "answered", Some(false)) => "answered: not done",
        (Lang::En, "answered", _) => "answered: done",
        (Lang::En, "timed_out", _) => "timed out",
        (Lang::En, _, _) => "not sent",
    }
}

/// A command as a person reads it.
pub fn describe(lang: Lang, command: &serde_json::Value) -> String {
    let n = |k: &str| command[k].as_u64().unwrap_or(0);
    match (lang, command["cmd"].as_str().unwrap_or("")) {
        (Lang::Zh, "sprinkle") => format!("喷淋 {} 秒", n("duration_s")),
        (Lang::Zh, "set_interval") => format!("上报间隔改为 {} 秒", n("interval_s")),
        (Lang::Zh, "reboot") => "重启".into(),
        (Lang::En, "sprinkle") => format!("sprinkle {} s", n("duration_s")),
        (Lang::En, "set_interval") => format!("report every {} s", n("interval_s")),
        (Lang::En, "reboot") => "reboot".into(),
        (Lang::Zh, "stop_work") => match command["duration_s"].as_u64() {
            Some(d) => format!("停工 {d} 秒 {}", command["ref"].as_str().unwrap_or("")),
            None => format!("停工至复工 {}", command["ref"].as_str().unwrap_or("")),
        },
        (Lang::En, "stop_work") => match command["duration_s"].as_u64() {
            Some(d) => format!(
                "stop work for {d} s {}",
                command["ref"].as_str().unwrap_or("")
            ),
            None => format!(
                "stop work until resumed {}",
                command["ref"].as_str().unwrap_or("")
            ),
        },
        (Lang::Zh, "resume_work") => format!("复工 {}", command["ref"].as_str().unwrap_or("")),
        (Lang::En, "resume_work") => {
            format!("resume work {}", command["ref"].as_str().unwrap_or(""))
        }
        (_, other) => other.to_string(),
    }
}
