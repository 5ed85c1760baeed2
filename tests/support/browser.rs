//! Headless Chromium driven over the DevTools protocol (CDP) on loopback: navigate, evaluate,
//! screenshot, and collect every JavaScript error (uncaught exceptions, console.error, log errors).
//! Debian's `chromium`; the flags keep it off the network (see the machine notes).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The Chromium binary: `DUSTWATCH_CHROMIUM`, else `chromium` / `chromium-browser` on PATH.
pub fn chromium_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DUSTWATCH_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// True when a missing browser must fail the test (CI sets it).
pub fn browser_required() -> bool {
    std::env::var_os("DUSTWATCH_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The Chromium binary, or `None` when it is missing and not required (the skip is said on
/// stderr); when `DUSTWATCH_REQUIRE_BROWSER` is set, a missing one fails the test.
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium_binary();
    if found.is_none() {
        assert!(
            !browser_required(),
            "DUSTWATCH_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium not installed (apt-get install chromium); set DUSTWATCH_REQUIRE_BROWSER=1 to make this a failure");
    }
    found
}

pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// JavaScript errors seen so far, in order.
    pub js_errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1366,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chromium");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address within 30 s");
        let port: u16 = browser_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|hp| hp.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("DevTools port");
        let list: Value = serde_json::from_str(&super::http_get(port, "/json/list").1)
            .expect("DevTools target list");
        let page_ws = list
            .as_array()
            .and_then(|a| a.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect DevTools");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let (ws, _) = tungstenite::client(page_ws.as_str(), stream).expect("DevTools handshake");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            js_errors: Vec::new(),
            _profile: profile,
        };
        b.call("Runtime.enable", json!({}));
        b.call("Log.enable", json!({}));
        b.call("Page.enable", json!({}));
        b
    }

    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                self.js_errors.push(format!(
                    "exception: {} {}",
                    d["text"],
                    d["exception"]["description"].as_str().unwrap_or("")
                ));
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.js_errors.push(format!("console.error: {}", p["args"]));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.js_errors.push(format!(
                    "log: {} ({})",
                    p["entry"]["text"], p["entry"]["url"]
                ));
            }
            Some("Page.javascriptDialogOpening") => {
                self.js_errors
                    .push(format!("dialog opened: {}", p["message"]));
            }
            _ => {}
        }
    }

    /// Send a command and wait for its answer (events met meanwhile are noted).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("send CDP command");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer to {method} within 60 s"
            );
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("CDP JSON");
                    if v["id"].as_u64() == Some(id) {
                        if let Some(e) = v.get("error") {
                            panic!("{method} failed: {e}");
                        }
                        return v["result"].clone();
                    }
                    self.note_event(&v);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("DevTools connection: {e}"),
            }
        }
    }

    /// Evaluate an expression (promises awaited) and return its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating `{expr}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Poll `expr` until it is truthy, at most `secs` seconds.
    pub fn wait_for(&mut self, secs: u64, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.eval(expr);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for `{expr}` (last value {v})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Open `url` and wait for the load to complete.
    /// Fill the login form on the page and send it.
    pub fn log_in(&mut self, name: &str, password: &str) {
        self.eval(&format!(
            "document.querySelector('input[name=name]').value = {};
             document.querySelector('input[name=password]').value = {};
             document.querySelector('form.login button').click(); true",
            json!(name),
            json!(password)
        ));
    }

    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(30, "document.readyState === 'complete'");
    }

    /// Save a PNG screenshot of the viewport.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, data).expect("write screenshot");
    }

    /// A desktop viewport of this size (a 1080p wall screen: 1920 × 1080).
    pub fn viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Emulate a phone-sized viewport (`None`: back to the window size).
    pub fn phone(&mut self, on: bool) {
        if on {
            self.call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
            );
        } else {
            self.call("Emulation.clearDeviceMetricsOverride", json!({}));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
