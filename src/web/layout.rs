//! The page shell shared by every HTML page: one stylesheet that works on a wall screen and a
//! phone, the navigation, and the small script helpers (bearer token, JSON calls, escaping by
//! `textContent`).

use super::html::escape;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

const CSS: &str = r#"
:root{--fg:#1c1c1c;--muted:#666;--line:#ddd;--ok:#2e7d32;--warning:#f9a825;--violation:#c62828;--offline:#616161;--unregistered:#6a1b9a}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:0;color:var(--fg);background:#f6f6f6;font-size:clamp(14px,1.1vw,22px)}
header{display:flex;flex-wrap:wrap;gap:.5em 1.2em;align-items:center;padding:.5em 1em;background:#263238;color:#fff}
header a{color:#fff;text-decoration:none}header a.on{text-decoration:underline}
header .brand{font-weight:bold;font-size:1.2em}
main{padding:.8em 1em}
h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1em 0 .4em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:.6em}
.card{background:#fff;border-radius:6px;border-left:.5em solid var(--offline);padding:.5em .7em;box-shadow:0 1px 2px #0002}
.card.ok{border-left-color:var(--ok)}.card.warning{border-left-color:var(--warning)}.card.violation{border-left-color:var(--violation)}.card.unregistered{border-left-color:var(--unregistered)}
.card a{color:inherit;text-decoration:none}.card .name{font-weight:bold}.card .sub{color:var(--muted);font-size:.85em}
.vals{display:grid;grid-template-columns:repeat(4,1fr);gap:.2em;margin:.3em 0;font-variant-numeric:tabular-nums}
.vals b{display:block;font-size:1.15em}.vals span{font-size:.75em;color:var(--muted)}
.aqi{display:inline-block;padding:0 .4em;border-radius:3px;border:1px solid #0003}
.badge{display:inline-block;padding:0 .4em;border-radius:3px;background:var(--violation);color:#fff;font-size:.85em}
.badge.none{background:#ccc;color:#333}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.3em .5em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;height:auto;background:#fff;border-radius:6px}
.panel{background:#fff;border-radius:6px;padding:.4em;margin-bottom:.6em}
.level{padding:.1em .5em;border-radius:3px;background:#eceff1;color:#000}
.level.blue{background:#1e88e5;color:#fff}.level.yellow{background:#fdd835}.level.orange{background:#fb8c00}.level.red{background:#e53935;color:#fff}
form.inline{display:flex;flex-wrap:wrap;gap:.4em;align-items:center}
input,select,button{font:inherit;padding:.2em .4em}
.msg{color:var(--violation)}.muted{color:var(--muted)}
.sev-warning{color:#b26a00}.sev-violation{color:var(--violation)}.sev-critical{color:var(--unregistered);font-weight:bold}
@media (max-width:600px){.vals{grid-template-columns:repeat(2,1fr)}td,th{padding:.25em}.hide-s{display:none}}
"#;

/// Client helpers: the write token (kept in localStorage once entered), JSON calls with it, and
/// element building with `textContent` only, so no device value is ever parsed as HTML.
const JS: &str = r#"
const dw = {
  token() { const f = document.querySelector('input[name=token]'); const v = f && f.value ? f.value : (localStorage.getItem('dustwatch-token') || ''); return v; },
  remember(t) { if (t) localStorage.setItem('dustwatch-token', t); },
  async call(method, url, body) {
    const t = dw.token();
    const r = await fetch(url, { method, headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + t }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let data = null; try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
    if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
    dw.remember(t);
    return data;
  },
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) { if (k === 'class') e.className = v; else e.setAttribute(k, v); }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  },
  time(ms) { if (ms == null) return '—'; const d = new Date(ms); return d.toISOString().replace('T', ' ').slice(0, 16) + 'Z'; },
  fill() { const t = localStorage.getItem('dustwatch-token'); document.querySelectorAll('input[name=token]').forEach(f => { if (t && !f.value) f.value = t; }); },
};
document.addEventListener('DOMContentLoaded', dw.fill);
"#;

/// A page's Content-Security-Policy: its own scripts by a fresh nonce, nothing else inline.
/// Styles stay 'unsafe-inline' (status colours are style attributes; a style cannot run code).
fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// 128 random bits for a page's script nonce.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness: the page's scripts are then blocked (the CSP names no valid
        // nonce), which is safe; the data is still shown.
        tracing::warn!("no random nonce for a page's scripts");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A full page with its Content-Security-Policy. `body` must already be escaped where it carries
/// data.
pub fn page(title: &str, active: &str, body: &str, script: &str) -> Response {
    let nav = [
        ("/", "Overview"),
        ("/alerts", "Alerts"),
        ("/dashboards", "Dashboards"),
    ]
    .iter()
    .map(|(href, name)| {
        let on = if *name == active { " class=on" } else { "" };
        format!("<a href=\"{href}\"{on}>{name}</a>")
    })
    .collect::<Vec<_>>()
    .join("");
    let nonce = nonce();
    let html = Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <link rel=icon href=\"data:,\"><title>{title} — dustwatch</title><style>{CSS}</style><script nonce={nonce}>{JS}</script></head>\
         <body><header><a class=brand href=\"/\">dustwatch</a>{nav}\
         <span id=city-level class=level title=\"city warning level\"></span>\
         <span id=live class=muted></span></header><main>{body}</main><script nonce={nonce}>{script}</script></body></html>",
        title = escape(title),
    ));
    let mut response = html.into_response();
    if let Ok(v) = HeaderValue::from_str(&page_csp(&nonce)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}
