//! `GET /api/hj212/frames` over a real socket: the raw frames kept for values left out
//! (`partial_frame`, unknown factors among them) and for frames with no usable value
//! (`no_values`), from the TCP listener and from MQTT, filtered by MN, reason and time, bounded
//! by `limit`, passwords masked.

mod support;

use dustwatch_protocol::hj212::{self, Cn};
use dustwatch_protocol::TopicRoot;
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use support::hj212::*;
use support::{http_get, publish_all};

async fn get(l: &Listener, path: &str) -> (u16, Value) {
    let port = l.agg.http_addr.port();
    let path = path.to_string();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(port, &path))
        .await
        .expect("get");
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn frames(v: &Value) -> &Vec<Value> {
    v["frames"].as_array().expect("frames")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_frames_are_queryable_by_mn_reason_time_and_limit() {
    let l = Listener::start(REGISTRY, |_| {}).await;
    let mut s = l.connect_from([127, 0, 0, 1]).await;
    // A vendor factor beside a good PM10: stored, the raw frame kept.
    let vendor = frame(&segment(
        2011,
        5,
        MN1,
        PW1,
        "1",
        "20170102150000",
        "a34002-Rtd=80,a34002-Flag=N;zz999-Rtd=5",
    ));
    assert_eq!(exchange(&mut s, &vendor).await.cn, Cn::DataReply);
    // Nothing usable at all.
    let nothing = nothing_usable_frame("2");
    assert_eq!(exchange(&mut s, &nothing).await.cn, Cn::DataReply);
    // A good frame keeps nothing.
    let good = data_frame(MN1, PW1, "3", 2);
    assert_eq!(exchange(&mut s, &good).await.cn, Cn::DataReply);
    // Another monitor over MQTT, its pressure channel a bare 0.
    l.until("subscribed", |a| {
        a.metrics.mqtt_subscribed.load(Relaxed) == 1
    })
    .await;
    let other = hj212::wrap_segment(
        "QN=4;ST=22;CN=2051;PW=secret;MN=OTHER01;Flag=4;CP=&&DataTime=20170102150000;\
         a34004-Avg=30,a34004-Flag=N;a01006-Avg=0,a01006-Flag=N&&",
    )
    .expect("fits");
    let port = l.broker_port();
    let topic = TopicRoot::default().hj212("s1", "d7");
    // And a frame whose CRC is wrong: refused whole, shown only when asked for.
    let mut bad_crc =
        hj212::wrap_segment("QN=5;ST=39;CN=2011;PW=x;MN=OTHER01;CP=&&&&").expect("fits");
    let at = bad_crc.len() - 3;
    bad_crc[at] = if bad_crc[at] == b'0' { b'1' } else { b'0' };
    publish_all(
        port,
        &format!("frames-api-{port}"),
        vec![(topic.clone(), bad_crc), (topic, other)],
    )
    .await;
    l.until("three frames kept", |a| {
        a.metrics
            .rejected(dustwatch_protocol::RejectReason::PartialFrame)
            == 2
            && a.metrics
                .rejected(dustwatch_protocol::RejectReason::NoValues)
                == 1
    })
    .await;

    let (status, all) = get(&l, "/api/hj212/frames").await;
    assert_eq!(status, 200, "{all}");
    let list = frames(&all);
    assert_eq!(list.len(), 3, "{all}");
    assert_eq!(all["more"], false);
    // Newest first: the MQTT frame, then the two TCP ones.
    let mqtt = &list[0];
    assert_eq!(
        (&mqtt["mn"], &mqtt["cn"], &mqtt["st"]),
        (
            &Value::from("OTHER01"),
            &Value::from(2051),
            &Value::from(22)
        )
    );
    assert_eq!(mqtt["reason"], "partial_frame");
    assert_eq!(mqtt["source"], "dust/v1/s1/d7/hj212");
    assert_eq!(mqtt["dropped"][0]["factor"], "a01006");
    assert_eq!(mqtt["dropped"][0]["reason"], "zero_not_physical");
    let text = mqtt["frame"].as_str().expect("text");
    assert!(text.contains("PW=***;MN=OTHER01"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    let none = &list[1];
    assert_eq!(none["reason"], "no_values");
    assert_eq!(none["data_time"], "20170102150100");
    let dropped: Vec<(&str, &str)> = none["dropped"]
        .as_array()
        .expect("dropped")
        .iter()
        .map(|d| {
            (
                d["factor"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        dropped,
        [("a01006", "zero_not_physical"), ("a34004", "zero_flagged")]
    );
    let vendor_kept = &list[2];
    assert_eq!(vendor_kept["mn"], MN1);
    assert_eq!(vendor_kept["dropped"][0]["reason"], "unknown_factor");
    assert!(
        vendor_kept["frame"]
            .as_str()
            .is_some_and(|t| t.contains("zz999-Rtd=5") && !t.contains(PW1)),
        "{vendor_kept}"
    );

    // Filters.
    let (_, by_mn) = get(&l, &format!("/api/hj212/frames?mn={MN1}")).await;
    assert_eq!(frames(&by_mn).len(), 2, "{by_mn}");
    let (_, other_mn) = get(&l, "/api/hj212/frames?mn=OTHER01").await;
    assert_eq!(frames(&other_mn).len(), 1);
    let (_, unknown_mn) = get(&l, "/api/hj212/frames?mn=NOBODY").await;
    assert!(frames(&unknown_mn).is_empty());
    let (_, no_values) = get(&l, "/api/hj212/frames?reason=no_values").await;
    assert_eq!(frames(&no_values).len(), 1);
    let (_, refused) = get(&l, "/api/hj212/frames?reason=bad_frame").await;
    let refused = frames(&refused);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0]["mn"],
        Value::Null,
        "a frame that does not decode has no header"
    );
    assert!(
        refused[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("bad_crc")),
        "{refused:?}"
    );
    let (_, one) = get(&l, "/api/hj212/frames?limit=1").await;
    assert_eq!((frames(&one).len(), &one["more"]), (1, &Value::Bool(true)));
    let (_, long_ago) = get(&l, "/api/hj212/frames?to=2000-01-01T00:00:00Z").await;
    assert!(frames(&long_ago).is_empty(), "received now, not in 1999");
    let (_, capped) = get(&l, "/api/hj212/frames?limit=1000000").await;
    assert_eq!(capped["limit"], 1000, "the limit is capped");

    // Bad queries get a reason.
    let (status, body) = get(&l, "/api/hj212/frames?reason=stolen").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get(&l, "/api/hj212/frames?from=2&to=1").await;
    assert_eq!(status, 400);
    l.stop().await;
}
