//! Firmware behaviour on a real broker: commands, the last will, status.

mod support;

use dustwatch_protocol::{Reading, TopicRoot};
use sensors_sim::{Scenario, Sim, Speed};
use support::{brokers, options, Capture};
use tokio_util::sync::CancellationToken;

fn reading(m: &support::Msg) -> Option<Reading> {
    Reading::decode(&m.payload).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_is_obeyed() {
    for (name, port, _keep) in brokers() {
        let root = format!("cmd{port}/v1");
        let mut cap = Capture::start(port, &format!("{root}/#"), false).await;
        let mut o = options(port, &root, 1);
        // Real-time-ish so commands land mid-run: 10 simulated minutes per second.
        o.speed = Speed::Factor(600.0);
        o.devices = Some(1);
        let sim = Sim::new(Scenario::load("steady").expect("steady"), o);
        let stop = CancellationToken::new();
        let handle = tokio::spawn(sim.run(stop.clone()));
        let t = TopicRoot::new(&root);
        let cmd = t.cmd("steady-00000", "m1");
        let readings = |m: &[support::Msg]| {
            m.iter()
                .filter(|m| m.topic.ends_with("/reading"))
                .filter_map(reading)
                .collect::<Vec<_>>()
        };

        cap.until("first reading", |m| !readings(m).is_empty())
            .await;
        cap.send(&cmd, r#"{"cmd":"set_interval","interval_s":300}"#)
            .await;
        cap.until("a 300 s reading", |m| {
            readings(m).iter().any(|r| r.interval_s == 300)
        })
        .await;
        cap.until("status with the new interval", |m| {
            m.iter().any(|m| {
                m.topic.ends_with("/status") && m.json().is_some_and(|v| v["interval_s"] == 300)
            })
        })
        .await;

        cap.send(&cmd, r#"{"cmd":"sprinkle","duration_s":600}"#)
            .await;
        cap.until("sprinkler on and off", |m| {
            let ev: Vec<_> = m
                .iter()
                .filter(|m| m.topic.ends_with("/event"))
                .filter_map(|m| m.json())
                .collect();
            let on = ev
                .iter()
                .find(|v| v["kind"] == "sprinkler_on")
                .and_then(|v| v["ts"].as_i64());
            let off = ev
                .iter()
                .find(|v| v["kind"] == "sprinkler_off")
                .and_then(|v| v["ts"].as_i64());
            matches!((on, off), (Some(a), Some(b)) if b - a == 600_000)
        })
        .await;

        // Stop work for an order, with an id: answered once on the reply topic.
        cap.send(&cmd, r#"{"id":"stop-1","cmd":"stop_work","ref":"order-1"}"#)
            .await;
        cap.until("the answer to stop_work", |m| {
            m.iter().any(|m| {
                m.topic.ends_with("/reply")
                    && m.json().is_some_and(|v| {
                        v["id"] == "stop-1"
                            && v["ok"] == true
                            && v["detail"] == "work stopped until resumed (order-1)"
                    })
            })
        })
        .await;

        cap.send(&cmd, r#"{"cmd":"reboot"}"#).await;
        cap.until("boot 2 from seq 0", |m| {
            readings(m).iter().any(|r| r.boot == 2 && r.seq == 0)
        })
        .await;
        assert!(
            cap.of_kind("event").iter().any(|m| m
                .json()
                .is_some_and(|v| v["kind"] == "reboot" && v["boot"] == 2)),
            "{name}"
        );
        // A restart drops the connection without DISCONNECT: the broker sends the last will.
        assert!(
            cap.of_kind("status")
                .iter()
                .any(|m| m.payload == br#"{"state":"offline"}"#),
            "{name}: last will"
        );
        let boot1: Vec<u64> = readings(&cap.msgs)
            .iter()
            .filter(|r| r.boot == 1)
            .map(|r| r.seq)
            .collect();
        assert!(
            boot1.windows(2).all(|w| w[1] == w[0] + 1),
            "{name}: seq continuous in boot 1"
        );

        stop.cancel();
        let summary = handle.await.expect("joins").expect("runs");
        assert_eq!(summary.devices, 1);
        // Graceful stop: a retained offline status carrying boot and ts.
        cap.until("graceful offline status", |m| {
            m.iter().any(|m| {
                m.topic.ends_with("/status")
                    && m.json()
                        .is_some_and(|v| v["state"] == "offline" && v["boot"] == 2)
            })
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_status_is_retained_and_the_city_level_follows_the_timeline() {
    for (name, port, _keep) in brokers() {
        let root = format!("lvl{port}/v1");
        let mut o = options(port, &root, 1);
        o.duration = Some(std::time::Duration::from_secs(30 * 3600));
        let cap_all = Capture::start(port, &format!("{root}/city/level"), false).await;
        let mut cap = cap_all;
        let summary = support::run("huiji-red-alert", o).await;
        assert_eq!(summary.devices, 43);
        cap.until("levels none, yellow, orange", |m| m.len() >= 3)
            .await;
        let levels: Vec<String> = cap
            .msgs
            .iter()
            .filter_map(|m| m.json())
            .map(|v| v["level"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(levels, ["none", "yellow", "orange"], "{name}");
        // Retained: a late subscriber still gets the level in force.
        let mut late = Capture::start(port, &format!("{root}/city/level"), false).await;
        late.until("retained level", |m| !m.is_empty()).await;
        assert!(
            late.msgs[0].retain && late.msgs[0].json().is_some_and(|v| v["level"] == "orange"),
            "{name}"
        );
    }
}
