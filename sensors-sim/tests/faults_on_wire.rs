//! Each fault kind of the `faults` scenario is visible on the wire, and the truth file lists what
//! was injected with the windows the wire shows.

mod support;

use dustwatch_protocol::{Reading, RejectReason};
use sensors_sim::Truth;
use serde_json::Value;
use std::collections::BTreeSet;
use support::{brokers, options, run, Capture, Msg};

const START: i64 = 1_483_286_400_000; // 2017-01-02T00:00:00+08:00, the scenario start
const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;

fn readings<'a>(cap: &'a Capture, site: &str) -> Vec<&'a Msg> {
    cap.of_kind("reading")
        .into_iter()
        .filter(|m| m.parts().is_some_and(|p| p.0 == site))
        .collect()
}

fn decoded(msgs: &[&Msg]) -> Vec<Reading> {
    msgs.iter()
        .filter_map(|m| Reading::decode(&m.payload).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_shows_on_the_wire_and_in_the_truth() {
    for (name, port, _keep) in brokers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let truth_path = dir.path().join("truth.json");
        let root = format!("f{port}/v1");
        let mut cap = Capture::start(port, &format!("{root}/#"), false).await;
        let mut o = options(port, &root, 3);
        o.truth = Some(truth_path.clone());
        let summary = run("faults", o).await;
        assert_eq!(summary.unsent, 0);
        cap.until("all readings", |m| {
            m.iter().filter(|m| m.topic.ends_with("/reading")).count() as u64 >= summary.acked
        })
        .await;

        // offline: connection dropped (last will), everything backfilled in order, no seq gap.
        // At least once: a publish in flight when the link dropped may arrive again; keep
        // first arrivals, which must be complete and in order.
        let mut seen = BTreeSet::new();
        let off: Vec<Reading> = decoded(&readings(&cap, "flt-offline"))
            .into_iter()
            .filter(|r| seen.insert(r.seq))
            .collect();
        assert_eq!(off.len(), 360, "{name}: 6 h of minutes, none lost");
        assert!(off
            .windows(2)
            .all(|w| w[1].seq == w[0].seq + 1 && w[1].ts > w[0].ts));
        let wills = |site: &str| {
            cap.of_kind("status")
                .iter()
                .filter(|m| {
                    m.parts().is_some_and(|p| p.0 == site) && m.payload == br#"{"state":"offline"}"#
                })
                .count()
        };
        assert!(
            wills("flt-offline") >= 1,
            "{name}: last will on the dropped connection"
        );

        // out_of_order_backfill: the window's readings arrive newest first.
        let back = decoded(&readings(&cap, "flt-backfill"));
        let window: Vec<i64> = back
            .iter()
            .map(|r| r.ts.ms())
            .filter(|ts| (START + H + MIN..=START + 90 * MIN).contains(ts))
            .collect();
        assert!(
            window.len() >= 29 && window.windows(2).all(|w| w[1] < w[0]),
            "{name}: {window:?}"
        );

        // power_loss: no readings in the window, then boot 2 from seq 0 and a reboot event.
        let power = decoded(&readings(&cap, "flt-power"));
        assert!(power
            .iter()
            .all(|r| !(START + 2 * H + MIN..=START + 2 * H + 20 * MIN).contains(&r.ts.ms())));
        let boot2: Vec<_> = power.iter().filter(|r| r.boot == 2).collect();
        assert_eq!(
            boot2.first().map(|r| (r.seq, r.ts.ms())),
            Some((0, START + 2 * H + 21 * MIN))
        );
        assert!(cap
            .of_kind("event")
            .iter()
            .any(|m| m.topic.contains("flt-power")
                && m.json()
                    .is_some_and(|v| v["kind"] == "reboot" && v["boot"] == 2)));
        assert!(wills("flt-power") >= 1, "{name}: last will on power loss");

        // stuck: identical PM values through the window.
        let stuck: BTreeSet<String> = decoded(&readings(&cap, "flt-stuck"))
            .iter()
            .filter(|r| r.ts.ms() > START + H + MIN && r.ts.ms() <= START + 3 * H)
            .map(|r| format!("{:?}/{:?}", r.pm25, r.pm10))
            .collect();
        assert_eq!(stuck.len(), 1, "{name}: stuck values {stuck:?}");

        // drift: the gain grows (10 %/h): last hour vs first hour against the reference.
        let mean = |site: &str, from: i64, to: i64| {
            let v: Vec<f64> = decoded(&readings(&cap, site))
                .iter()
                .filter(|r| r.ts.ms() > from && r.ts.ms() <= to)
                .filter_map(|r| r.pm25)
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let early = mean("flt-drift", START, START + H) / mean("flt-ref", START, START + H);
        let late = mean("flt-drift", START + 5 * H, START + 6 * H)
            / mean("flt-ref", START + 5 * H, START + 6 * H);
        assert!(late > 1.3 * early, "{name}: drift {early} -> {late}");

        // spikes: the spike minute reads several times its neighbours.
        let sp = decoded(&readings(&cap, "flt-spikes"));
        let at = |ts: i64| {
            sp.iter()
                .find(|r| r.ts.ms() == ts)
                .and_then(|r| r.pm10)
                .unwrap_or(0.0)
        };
        let spike = START + 30 * MIN + MIN;
        assert!(
            at(spike) > 3.0 * at(spike - MIN),
            "{name}: spike {} vs {}",
            at(spike),
            at(spike - MIN)
        );

        // negative, NaN, malformed: rejected by the contract's decoder with the matching reason.
        let reasons: BTreeSet<RejectReason> = readings(&cap, "flt-bad")
            .iter()
            .filter_map(|m| Reading::decode(&m.payload).err().map(|e| e.reason))
            .collect();
        assert_eq!(
            reasons,
            BTreeSet::from([
                RejectReason::OutOfRange,
                RejectReason::NonFinite,
                RejectReason::MalformedJson
            ]),
            "{name}"
        );
        assert!(readings(&cap, "flt-bad")
            .iter()
            .any(|m| String::from_utf8_lossy(&m.payload).contains("NaN")));

        // duplicate: the same (boot, seq) twice with the same payload; clock_skew: ts shifted -7 min.
        let dup_msgs = readings(&cap, "flt-dup");
        let dup = decoded(&dup_msgs);
        let in_dup: Vec<_> = dup
            .iter()
            .filter(|r| r.ts.ms() > START + H && r.ts.ms() <= START + 90 * MIN)
            .collect();
        assert_eq!(in_dup.len(), 60, "{name}: 30 readings, each twice");
        let skewed: Vec<_> = dup.iter().filter(|r| (120..180).contains(&r.seq)).collect();
        assert!(
            skewed
                .iter()
                .all(|r| r.ts.ms() == START + (r.seq as i64 + 1) * MIN - 7 * MIN),
            "{name}"
        );

        // The truth file: every kind, windows as configured.
        let truth: Truth =
            serde_json::from_slice(&std::fs::read(&truth_path).expect("truth written"))
                .expect("truth parses");
        let kinds: BTreeSet<&str> = truth.records.iter().map(|r| r.kind.as_str()).collect();
        for k in [
            "offline",
            "out_of_order_backfill",
            "data_gap",
            "reboot",
            "sensor_stuck",
            "sensor_drift",
            "spike",
            "invalid_value",
            "malformed_payload",
            "duplicate_publish",
            "clock_skew",
        ] {
            assert!(kinds.contains(k), "{name}: truth lacks {k}: {kinds:?}");
        }
        let find = |site: &str, kind: &str| {
            truth
                .records
                .iter()
                .find(|r| r.site == site && r.kind == kind)
                .map(|r| (r.start_ms, r.end_ms, r.device.clone()))
        };
        assert_eq!(
            find("flt-power", "data_gap"),
            Some((START + 2 * H, START + 2 * H + 20 * MIN, Some("m1".into())))
        );
        assert_eq!(
            find("flt-stuck", "sensor_stuck"),
            Some((START + H, START + 3 * H, Some("m1".into())))
        );
        let spikes = truth.records.iter().filter(|r| r.kind == "spike").count();
        assert_eq!(spikes, 5, "{name}: one spike an hour from 00:30 to 04:30");
        assert_eq!(
            truth.records.iter().filter(|r| r.site == "flt-ref").count(),
            0
        );
        let _: Value = serde_json::to_value(&truth).expect("serializes");
    }
}
