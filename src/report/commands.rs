//! The daily report's commands: how many of each kind the office sent that day and what became
//! of them.
//!
//! Which day a command belongs to: the local day (the office's zone, Asia/Shanghai) of the time
//! it was sent on the office's clock (`office_ts`, see `crate::commands::office_now`), not of
//! its wall-clock `sent_ms`. The office reads the report for the day it acted; its orders,
//! re-inspections and notices carry that same clock, so a stop-work command is counted on the
//! same day's report as the order that sent it. For a live fleet the two clocks name the same
//! day except within a reporting interval of midnight; for a replayed or simulated fleet only
//! the office's clock names the day whose data the office acted on. Commands stored before
//! that clock was recorded fall back to `sent_ms`.

use super::DailyReport;
use crate::store::commands::CommandState;
use chrono_tz::Tz;
use dustwatch_protocol::Zone;
use serde::Serialize;

/// One kind of command (`stop_work`, `sprinkle`, …) on the day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommandDay {
    pub kind: String,
    /// Every command of the kind the office gave that day (the states below add up to it).
    pub sent: u64,
    /// Answered by the device (`refused` of them said they could not).
    pub answered: u64,
    pub refused: u64,
    pub timed_out: u64,
    /// Still awaiting an answer when the report was made.
    pub awaiting: u64,
    /// Never left the aggregator.
    pub not_sent: u64,
}

/// Counts of (kind, state, refused, n) as the store groups them.
pub type CommandCounts = Vec<(String, CommandState, bool, u64)>;

/// Add the day's commands; `counts(from, to)` reads them from the command store for the
/// day's bounds on the office's clock.
pub fn add_commands<E>(
    report: &mut DailyReport,
    tz: Tz,
    counts: impl FnOnce(i64, i64) -> Result<CommandCounts, E>,
) -> Result<(), E> {
    let (from, to) = Zone::from(tz).day_bounds(report.date);
    report.commands = Some(summarise(counts(from.ms(), to.ms())?));
    Ok(())
}

fn summarise(counts: CommandCounts) -> Vec<CommandDay> {
    let mut days: Vec<CommandDay> = Vec::new();
    for (kind, state, refused, n) in counts {
        let i = match days.iter().position(|d| d.kind == kind) {
            Some(i) => i,
            None => {
                days.push(CommandDay {
                    kind,
                    ..CommandDay::default()
                });
                days.len() - 1
            }
        };
        let d = &mut days[i];
        d.sent += n;
        match state {
            CommandState::Answered => {
                d.answered += n;
                if refused {
                    d.refused += n;
                }
            }
            CommandState::TimedOut => d.timed_out += n,
            CommandState::Sent => d.awaiting += n,
            CommandState::NotSent => d.not_sent += n,
        }
    }
    days.sort_by(|a, b| a.kind.cmp(&b.kind));
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_add_up_per_kind() {
        let days = summarise(vec![
            ("stop_work".into(), CommandState::Answered, false, 3),
            ("stop_work".into(), CommandState::Answered, true, 1),
            ("stop_work".into(), CommandState::TimedOut, false, 2),
            ("reboot".into(), CommandState::NotSent, false, 1),
            ("stop_work".into(), CommandState::Sent, false, 1),
        ]);
        assert_eq!(
            days,
            vec![
                CommandDay {
                    kind: "reboot".into(),
                    sent: 1,
                    not_sent: 1,
                    ..CommandDay::default()
                },
                CommandDay {
                    kind: "stop_work".into(),
                    sent: 7,
                    answered: 4,
                    refused: 1,
                    timed_out: 2,
                    awaiting: 1,
                    not_sent: 0,
                },
            ]
        );
    }
}
