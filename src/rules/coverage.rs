//! What could not be judged, and why: a rule that stays silent for lack of data must say so,
//! or the office reads silence as compliance.

pub use dustwatch_protocol::day::{NotJudged, Reason};

/// Add `minutes` not judged for `rule` because of `reason` (merged with the same rule and kind
/// of reason).
pub fn add(list: &mut Vec<NotJudged>, rule: &str, minutes: u32, reason: Reason) {
    let same = |n: &NotJudged| {
        n.rule == rule && std::mem::discriminant(&n.reason) == std::mem::discriminant(&reason)
    };
    if let Some(n) = list.iter_mut().find(|n| same(n)) {
        n.minutes += minutes;
        n.text = reason.to_string();
        n.reason = reason;
    } else {
        list.push(NotJudged {
            rule: rule.to_string(),
            minutes,
            text: reason.to_string(),
            reason,
        });
    }
}
