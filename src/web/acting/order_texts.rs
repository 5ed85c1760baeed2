//! The words of device commands sent for the office's actions: an order's device answers on the
//! action page and the daily report's commands section. Simplified Chinese first.

use crate::store::commands::{CommandRow, CommandState};
use crate::web::i18n::Lang;

pub struct OrderTexts {
    /// Heading of the devices' answers to the order's commands.
    pub devices: &'static str,
    /// A stop-work order on a site none of whose devices ever reported.
    pub no_device: &'static str,
    pub waiting: &'static str,
    pub done: &'static str,
    pub refused: &'static str,
    pub no_answer: &'static str,
    pub not_sent: &'static str,
    pub stop: &'static str,
    pub resume: &'static str,
    /// The daily report's section and its columns.
    pub report_heading: &'static str,
    pub report_columns: [&'static str; 7],
}

pub const ZH: OrderTexts = OrderTexts {
    devices: "设备回执",
    no_device: "该工地尚无设备上报数据,停工指令未发送。",
    waiting: "已发送,等待设备应答",
    done: "设备已执行",
    refused: "设备未执行",
    no_answer: "超时无应答",
    not_sent: "未发出",
    stop: "停工",
    resume: "复工",
    report_heading: "设备指令",
    report_columns: [
        "指令",
        "发送",
        "已应答",
        "其中未执行",
        "超时",
        "等待应答",
        "未发出",
    ],
};

pub const EN: OrderTexts = OrderTexts {
    devices: "Devices' answers",
    no_device: "No device of this site has reported yet: no stop-work command was sent.",
    waiting: "sent, awaiting the device's answer",
    done: "carried out by the device",
    refused: "refused by the device",
    no_answer: "no answer",
    not_sent: "not sent",
    stop: "stop work",
    resume: "resume work",
    report_heading: "Device commands",
    report_columns: [
        "Command",
        "Sent",
        "Answered",
        "of which refused",
        "Timed out",
        "Awaiting",
        "Not sent",
    ],
};

pub fn texts(lang: Lang) -> &'static OrderTexts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

impl OrderTexts {
    /// What became of a command, as the action page says it.
    pub fn outcome(&self, c: &CommandRow) -> &'static str {
        match (c.state, c.ok) {
            (CommandState::Sent, _) => self.waiting,
            (CommandState::Answered, Some(false)) => self.refused,
            (CommandState::Answered, _) => self.done,
            (CommandState::TimedOut, _) => self.no_answer,
            (CommandState::NotSent, _) => self.not_sent,
        }
    }

    /// A kind of command (`cmd` on the wire) in a word.
    pub fn kind_name(lang: Lang, cmd: &str) -> &str {
        match (lang, cmd) {
            (Lang::Zh, "stop_work") => "停工",
            (Lang::Zh, "resume_work") => "复工",
            (Lang::Zh, "sprinkle") => "喷淋",
            (Lang::Zh, "set_interval") => "上报间隔",
            (Lang::Zh, "reboot") => "重启",
            (_, other) => other,
        }
    }

    /// The command's kind in a word.
    pub fn kind(&self, c: &CommandRow) -> &'static str {
        if c.command["cmd"] == "resume_work" {
            self.resume
        } else {
            self.stop
        }
    }
}
