//! A stop-work notice reaches the devices: issuing it sends `stop_work` (with the notice's
//! reference and a duration) to every device of each site it stops, over a real broker; the
//! simulated device answers, and its answer is the site's receipt, by the device. The day's
//! report counts the command.

mod support;

use support::http::{request, Web, TOKEN};
use tokio_util::sync::CancellationToken;

fn json(port: u16, method: &str, path: &str, body: &str) -> serde_json::Value {
    let r = request(port, method, path, Some(TOKEN), body);
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    serde_json::from_str(&r.body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_stops_the_sites_devices_and_their_answers_are_its_receipts() {
    let scenario = sensors_sim::Scenario::load("steady").expect("shipped scenario");
    let options = |port: u16| support::fleet::answering_devices(port, "notice-sim", 2);
    let plan = sensors_sim::Sim::new(scenario.clone(), options(1))
        .plan()
        .expect("plan");
    let mut sites: Vec<_> = plan.devices.iter().map(|d| d.site.info.clone()).collect();
    sites.dedup_by(|a, b| a.id == b.id);
    let ids: Vec<String> = sites.iter().map(|s| s.id.clone()).collect();
    let web = Web::start_with(|c| c.commands.timeout_s = 30, sites).await;
    let port = web.port;
    support::wait_subscribed(&web.agg).await;
    let fleet_stop = CancellationToken::new();
    let fleet = tokio::spawn(
        sensors_sim::Sim::new(scenario, options(web.broker_port())).run(fleet_stop.clone()),
    );
    let reader = web.agg.reader.clone();
    support::eventually_async(90, "every simulated device reports", || {
        ids.iter()
            .all(|s| reader.devices(Some(s)).is_ok_and(|d| !d.is_empty()))
            .then_some(())
    })
    .await;

    // Red stops all work on these (structure-phase) sites.
    let notice = json(
        port,
        "POST",
        "/api/notices",
        r#"{"level":"red","note":"红色预警"}"#,
    );
    let nid = notice["id"].as_i64().expect("notice id");
    let mut stopped: Vec<String> = notice["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|r| r["site"].as_str().unwrap_or("").to_string())
        .collect();
    stopped.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(stopped, expected);

    // Each site's device got the command and answered: the receipt is the device's.
    for site in &ids {
        let cmds = json(port, "GET", &format!("/api/sites/{site}/commands"), "");
        let c = cmds
            .as_array()
            .and_then(|a| a.first())
            .expect("a command")
            .clone();
        assert_eq!(c["command"]["cmd"], "stop_work", "{c}");
        assert_eq!(c["command"]["ref"], format!("notice-{nid}"), "{c}");
        assert_eq!(c["command"]["duration_s"], 86_400, "{c}");
    }
    let receipts = support::eventually_async(90, "a receipt from every device", || {
        let n = json(port, "GET", "/api/notices", "");
        let n = n.as_array()?.iter().find(|n| n["id"] == nid)?.clone();
        n["receipts"]
            .as_array()?
            .iter()
            .all(|r| r["received_ts"].is_i64())
            .then_some(n["receipts"].clone())
    })
    .await;
    for r in receipts.as_array().expect("receipts") {
        assert_eq!(r["via"], "device", "{r}");
        let site = r["site"].as_str().expect("site");
        let devices = reader.devices(Some(site)).expect("devices");
        assert!(
            devices
                .iter()
                .any(|d| Some(d.device.as_str()) == r["by"].as_str()),
            "{r}"
        );
    }

    // The day's report (the fleet's local day) counts the answered stop.
    let report = json(port, "GET", "/reports/daily/today.json", "");
    let stop = report["commands"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "stop_work"))
        .expect("stop_work in the report")
        .clone();
    assert_eq!(stop["sent"], ids.len(), "{stop}");
    assert_eq!(stop["answered"], ids.len(), "{stop}");

    fleet_stop.cancel();
    let _ = fleet.await;
    web.stop().await;
}
