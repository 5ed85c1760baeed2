//! Verdicts the office acts on, in event time: the allowance per local day, alerts stamped within
//! the day they judge, re-inspection, levels per minute, sprinkling per site, coverage.

#[path = "support/rules_sim.rs"]
mod rules_sim;

use dustwatch::rules::{Change, Profile};
use dustwatch_protocol::Level;
use rules_sim::{hebei, midnight, t0, Sim, HOUR, MIN, QUIET};

/// Hours from `from` where the site is +100 over the reference (exceeding Hebei's +80) when
/// `exceed(h)` is true, clean otherwise.
fn hebei_hours(s: &mut Sim, from: i64, hours: i64, exceed: impl Fn(i64) -> bool) {
    for h in 0..hours {
        let pm10 = if exceed(h) { 200.0 } else { 110.0 };
        s.run(from + h * HOUR, 60, |_| (pm10, 45.0));
    }
}

#[test]
fn daily_allowance_starts_again_each_local_day() {
    let mut s = Sim::with(hebei());
    // Day one (08:00-24:00 local): two exceeding hours, within the allowance of two.
    hebei_hours(&mut s, t0(), 16, |h| h == 1 || h == 3);
    // Day two from local midnight (16:00 UTC): two more, again within that day's allowance.
    hebei_hours(&mut s, midnight(), 5, |h| h == 1 || h == 3);
    assert!(
        s.changes("pm10-increment-hourly").is_empty(),
        "two exceedances a day are allowed on each day"
    );
    // A third exceedance on day two is one too many.
    hebei_hours(&mut s, midnight() + 5 * HOUR, 2, |h| h == 0);
    let t = s.transitions("pm10-increment-hourly");
    assert_eq!(t.first().map(|(c, _)| *c), Some(Change::Opened));
    let opened = &t[0].1;
    assert_eq!(opened.evidence["exceedances_today"], 3);
    assert!(opened.opened_ts > midnight() && opened.opened_ts <= midnight() + 6 * HOUR);
}
