//! Re-inspection photos from the action page's form: JPEG or PNG by declared type and content,
//! at most 5 MiB, only with the session's CSRF token, kept in the data directory and shown to
//! logged-in users only.

mod support;

use support::acting::*;
use support::{eventually, publish_all};

async fn wait_alert(port: u16, site: &'static str) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        eventually(60, &format!("{site}'s alert"), || {
            pm10_alert(port, site, "")
        })
    })
    .await
    .expect("wait")
}

/// A multipart form as a browser sends it: (content type, body).
fn multipart(fields: &[(&str, &str)], photo: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----dustwatch-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((mime, bytes)) = photo {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"site.img\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_multipart(port: u16, path: &str, cookie: &str, ct: &str, body: &[u8]) -> u16 {
    try_post_multipart(port, path, cookie, ct, body).unwrap_or_else(|e| panic!("transport: {e}"))
}

/// The status, or the transport error: the server may answer an oversized body before it has
/// read it all and close, and the client then fails writing the rest (a broken pipe).
fn try_post_multipart(
    port: u16,
    path: &str,
    cookie: &str,
    ct: &str,
    body: &[u8],
) -> Result<u16, Box<ureq::Transport>> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent
        .post(&format!("http://127.0.0.1:{port}{path}"))
        .set("Cookie", cookie)
        .set("Content-Type", ct)
        .send_bytes(body)
    {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(s, _)) => Ok(s),
        Err(ureq::Error::Transport(t)) => Err(Box::new(t)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinspection_photos_are_checked_capped_and_kept_in_the_data_directory() {
    let office = Office::start().await;
    let port = office.port;
    publish_all(office.broker_port, "fleet-photo", readings(0, 130)).await;
    let id = wait_alert(port, "s1").await["id"].as_i64().expect("id");
    let photos = office.data.path().join("photos");
    tokio::task::spawn_blocking(move || {
        let (_, inspector, _) = users(port);
        let order = ok(
            port,
            "POST",
            &format!("/api/alerts/{id}/orders"),
            &inspector,
            r#"{"kind":"stop_work"}"#,
        )["id"]
            .as_i64()
            .expect("order");
        let (cookie, csrf) = login(port, "li", "li-password").expect("login");
        let path = format!("/alerts/{id}/act/reinspect");
        let order_s = order.to_string();
        let fields = [
            ("csrf", csrf.as_str()),
            ("order_id", order_s.as_str()),
            ("result", "failed"),
            ("note", "照片为证"),
        ];
        let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
            .iter()
            .copied()
            // Over the 2 MB a form may carry elsewhere, under the photo's 5 MiB.
            .chain((0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8))
            .collect();

        // Declared PNG but not one; a PNG declared as something else; too large: refused.
        let (ct, body) = multipart(&fields, Some(("image/png", b"<svg onload=alert(1)>")));
        assert_eq!(post_multipart(port, &path, &cookie, &ct, &body), 400);
        let (ct, body) = multipart(&fields, Some(("text/html", &png)));
        assert_eq!(post_multipart(port, &path, &cookie, &ct, &body), 400);
        let mut big = png.clone();
        big.resize(6 * 1024 * 1024, 0);
        let (ct, body) = multipart(&fields, Some(("image/png", &big)));
        // Refused with 400/413, or cut off mid-body; either way nothing is kept (checked below).
        match try_post_multipart(port, &path, &cookie, &ct, &body) {
            Ok(s) => assert!(s == 400 || s == 413, "{s}"),
            Err(e) => assert_eq!(e.kind(), ureq::ErrorKind::Io, "{e}"),
        }
        // Without the CSRF token: refused.
        let (ct, body) = multipart(&fields[1..], Some(("image/png", &png)));
        assert_eq!(post_multipart(port, &path, &cookie, &ct, &body), 403);
        let none = ok(
            port,
            "GET",
            &format!("/api/alerts/{id}/orders"),
            &Auth::None,
            "",
        );
        assert_eq!(
            none[0]["reinspections"],
            serde_json::json!([]),
            "nothing recorded"
        );

        // A real PNG: recorded, kept under the data directory, shown to logged-in users only.
        let (ct, body) = multipart(&fields, Some(("image/png", &png)));
        assert_eq!(post_multipart(port, &path, &cookie, &ct, &body), 303);
        let orders = ok(
            port,
            "GET",
            &format!("/api/alerts/{id}/orders"),
            &Auth::None,
            "",
        );
        let r = &orders[0]["reinspections"][0];
        assert_eq!(
            (r["by"].as_str(), r["result"].as_str()),
            (Some("li"), Some("failed"))
        );
        let name = r["photo"].as_str().expect("photo name").to_string();
        assert_eq!(std::fs::read(photos.join(&name)).expect("kept"), png);
        let (s, _) = call(port, "GET", &format!("/photos/{name}"), &Auth::None, "");
        assert_eq!(s, 401);
        let (s, _) = call(port, "GET", "/photos/..%2Fdustwatch.db", &inspector, "");
        assert_eq!(s, 404);
        let agent = ureq::AgentBuilder::new().build();
        let got = agent
            .get(&format!("http://127.0.0.1:{port}/photos/{name}"))
            .set("Cookie", &cookie)
            .call()
            .expect("photo");
        assert_eq!(got.content_type(), "image/png");
    })
    .await
    .expect("photos");
    office.stop().await;
}
