//! Commands to devices end to end: the API stores a command and the aggregator publishes it on
//! a real broker; a sensors-sim device obeys and answers on its reply topic; ingest records the
//! answer (sent → answered); a command nobody answers times out; bad input is refused.

mod support;

use dustwatch_protocol::TopicRoot;
use support::http::{request, Web, TOKEN};
use tokio_util::sync::CancellationToken;

fn state_of(port: u16, id: &str) -> serde_json::Value {
    let r = request(port, "GET", &format!("/api/commands/{id}"), None, "");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).expect("command JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_the_api_the_site_page_and_the_cli_are_answered_and_unanswered_ones_time_out()
{
    let scenario = sensors_sim::Scenario::load("steady").expect("shipped scenario");
    let options = |port: u16| support::fleet::answering_devices(port, "cmd-sim", 1);
    let plan = sensors_sim::Sim::new(scenario.clone(), options(1))
        .plan()
        .expect("plan");
    let device = plan.devices[0].clone();
    let (site, dev) = (device.site.info.id.clone(), device.id.clone());
    let mut sites: Vec<_> = plan.devices.iter().map(|d| d.site.info.clone()).collect();
    sites.dedup_by(|a, b| a.id == b.id);
    let web = Web::start_with(|c| c.commands.timeout_s = 3, sites).await;
    let port = web.port;
    support::wait_subscribed(&web.agg).await;

    let broker_port = web.broker_port();
    let fleet_stop = CancellationToken::new();
    let fleet =
        tokio::spawn(sensors_sim::Sim::new(scenario, options(broker_port)).run(fleet_stop.clone()));
    let reader = web.agg.reader.clone();
    let (s, d) = (site.clone(), dev.clone());
    support::until_async(60, "the simulated device reports", || {
        reader
            .devices(Some(&s))
            .is_ok_and(|ds| ds.iter().any(|x| x.device == d))
    })
    .await;

    // Without the write token: refused before anything is stored or sent.
    let path = format!("/api/sites/{site}/commands");
    let body = format!(r#"{{"device":"{dev}","by":"王工","cmd":"sprinkle","duration_s":600}}"#);
    assert_eq!(request(port, "POST", &path, None, &body).status, 401);
    assert_eq!(
        request(port, "POST", &path, Some("wrong-token-0123456789"), &body).status,
        401
    );
    // Out of range, unknown device, not JSON: clear 4xx answers.
    let r = request(
        port,
        "POST",
        &path,
        Some(TOKEN),
        &format!(r#"{{"device":"{dev}","cmd":"set_interval","interval_s":0}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("interval_s"), "{}", r.body);
    let r = request(
        port,
        "POST",
        &path,
        Some(TOKEN),
        r#"{"device":"nobody","cmd":"reboot"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = request(port, "POST", &path, Some(TOKEN), "{oops");
    assert_eq!(r.status, 400, "{}", r.body);
    let listed = request(port, "GET", &path, None, "");
    assert_eq!(listed.body, "[]", "nothing stored by refused requests");

    // A sprinkle command: sent, then answered by the device.
    let r = request(port, "POST", &path, Some(TOKEN), &body);
    assert_eq!(r.status, 202, "{}", r.body);
    let sent: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    let id = sent["id"].as_str().expect("an id").to_string();
    assert_eq!(sent["state"], "sent");
    assert_eq!(sent["by"], "王工");
    support::until_async(60, "the device's answer", || {
        state_of(port, &id)["state"] == "answered"
    })
    .await;
    let answered = state_of(port, &id);
    assert_eq!(answered["ok"], true);
    assert_eq!(answered["detail"], "sprinkling for 600 s");

    // The same from the site page, in a real browser: the form sends with the write token and
    // the page shows the answer.
    from_the_site_page(port, &site).await;

    // And from the command line, as an inspector would.
    let out = tokio::task::spawn_blocking({
        let (site, dev) = (site.clone(), dev.clone());
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"))
                .args(["command", &site, &dev, "set-interval", "--interval", "1m"])
                .args([
                    "--server",
                    &format!("http://127.0.0.1:{port}"),
                    "--by",
                    "cli-test",
                ])
                .env("DUSTWATCH_WRITE_TOKEN", TOKEN)
                .output()
                .expect("run dustwatch command")
        }
    })
    .await
    .expect("cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("answered: done reporting every 60 s"),
        "{stdout}"
    );

    // The device is stopped: the next command is never answered and times out.
    fleet_stop.cancel();
    fleet.await.expect("join").expect("the fleet ran");
    let r = request(
        port,
        "POST",
        &path,
        Some(TOKEN),
        &format!(r#"{{"device":"{dev}","cmd":"reboot"}}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id2 = serde_json::from_str::<serde_json::Value>(&r.body).expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_string();
    support::until_async(60, "the timeout", || {
        state_of(port, &id2)["state"] == "timed_out"
    })
    .await;

    // A reply to a command that was never sent is a dead letter, not lost.
    let before = reader.counts().expect("counts").dead_letters;
    let root = TopicRoot::default();
    support::publish_all(
        broker_port,
        "forger",
        vec![(
            root.reply(&site, &dev),
            br#"{"id":"feedface","ok":true}"#.to_vec(),
        )],
    )
    .await;
    support::until_async(60, "the stray reply's dead letter", || {
        reader.counts().is_ok_and(|c| c.dead_letters > before)
    })
    .await;

    // The site page shows both, and the metrics count them.
    let page = request(port, "GET", &format!("/sites/{site}"), None, "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("设备指令"), "the section is there");
    assert!(
        page.body.contains(&format!("<option value=\"{dev}\">")),
        "the form offers the site's device"
    );
    assert!(page
        .body
        .contains(&format!("data-command=\"{id}\" data-state=\"answered\"")));
    assert!(page
        .body
        .contains(&format!("data-command=\"{id2}\" data-state=\"timed_out\"")));
    let metrics = request(port, "GET", "/metrics", None, "").body;
    let from_browser = if support::browser::chromium_binary().is_some() {
        1.0
    } else {
        0.0
    };
    assert_eq!(
        support::metric(&metrics, "dustwatch_commands_sent_total"),
        Some(3.0 + from_browser)
    );
    assert_eq!(
        support::metric(&metrics, "dustwatch_commands_timed_out_total"),
        Some(1.0)
    );
    web.stop().await;
}

/// Send a sprinkle command from the site page in headless Chromium and wait until the page shows
/// it answered (skipped without Chromium unless DUSTWATCH_REQUIRE_BROWSER is set).
async fn from_the_site_page(port: u16, site: &str) {
    use support::browser::{chromium_or_skip, Browser};
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/sites/{site}?lang=zh-CN");
    tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch(&chromium);
        b.goto(&url);
        let answered = "document.querySelectorAll('#commands tr[data-state=answered]').length";
        assert_eq!(b.eval(answered), serde_json::json!(1));
        b.eval(&format!(
            "(() => {{ const f = document.querySelector('form.device-command'); \
             f.token.value = '{TOKEN}'; f.cmd.value = 'sprinkle'; f.amount.value = '2'; \
             f.requestSubmit(); return true; }})()"
        ));
        b.wait_for(60, &format!("{answered} >= 2"));
        let text = b.eval("document.querySelector('#commands tbody tr').textContent");
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains("喷淋 120 秒") && t.contains("已应答")),
            "{text}"
        );
        assert!(
            b.js_errors.is_empty(),
            "JavaScript errors: {:?}",
            b.js_errors
        );
    })
    .await
    .expect("browser part");
}
