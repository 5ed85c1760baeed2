//! The alerts page (`/alerts`): filters by state and site, and per open alert an acknowledge form
//! with name and comment (needs the write token; `POST /api/alerts/{id}/ack`). The table refreshes
//! itself when the `/events` stream reports an alert change.

use super::html::escape;
use super::layout;
use super::live::CLIENT;
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, AlertRow, StoreReader};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write;

#[derive(Debug, Deserialize)]
pub struct AlertsQuery {
    pub state: Option<String>,
    pub site: Option<String>,
    /// `1`: only the table rows (for the live refresh).
    pub partial: Option<u8>,
}

const STATES: [&str; 5] = ["open", "active", "cleared", "closed", "all"];

fn time(ms: Option<i64>, tz: chrono_tz::Tz) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&tz).format("%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

fn evidence(a: &AlertRow) -> String {
    match &a.evidence {
        serde_json::Value::Object(m) => m
            .iter()
            .take(6)
            .map(|(k, v)| match v {
                serde_json::Value::Number(n) => format!("{k}={n}"),
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn rows(alerts: &[AlertRow], tz: chrono_tz::Tz) -> String {
    let mut b = String::new();
    if alerts.is_empty() {
        b.push_str("<tr><td colspan=8 class=muted>no alerts match</td></tr>");
    }
    for a in alerts {
        let ack = if a.acknowledged {
            format!(
                "<span class=acked>✔ {} — {}</span>",
                escape(a.ack_by.as_deref().unwrap_or("")),
                escape(a.ack_comment.as_deref().unwrap_or(""))
            )
        } else if a.state != "closed" {
            format!(
                "<form class=\"inline ack\" data-id=\"{id}\"><input name=by placeholder=name required maxlength=100>\
                 <input name=comment placeholder=comment maxlength=2000>\
                 <button type=submit>Acknowledge</button><span class=msg></span></form>",
                id = a.id
            )
        } else {
            "<span class=muted>closed unacknowledged</span>".into()
        };
        let _ = write!(
            b,
            "<tr data-alert=\"{id}\"><td class=n>{id}</td><td><a href=\"/sites/{site}\">{site}</a></td>\
             <td>{rule}<div class=muted>{kind}; {ev}</div></td><td class=\"sev-{sev}\">{sev}<div class=muted>{off} offences</div></td>\
             <td>{state}</td><td>{opened}<div class=muted>updated {updated}</div></td><td class=hide-s>{cleared}</td><td>{ack}</td></tr>",
            id = a.id,
            site = escape(&a.site),
            rule = escape(&a.rule),
            kind = escape(&a.kind),
            ev = escape(&evidence(a)),
            sev = escape(&a.severity),
            off = a.offences,
            state = escape(&a.state),
            opened = time(Some(a.opened_ts), tz),
            updated = time(Some(a.updated_ts), tz),
            cleared = time(a.cleared_ts.or(a.closed_ts), tz),
        );
    }
    b
}

const SCRIPT: &str = r#"
function wireAcks() {
  document.querySelectorAll('form.ack').forEach(f => {
    if (f.dataset.wired) return; f.dataset.wired = '1';
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const msg = f.querySelector('.msg');
      try {
        const r = await dw.call('POST', '/api/alerts/' + f.dataset.id + '/ack', { by: f.by.value, comment: f.comment.value });
        const done = dw.el('span', { class: 'acked' }, '✔ ' + r.ack_by + ' — ' + (r.ack_comment || ''));
        f.replaceWith(done);
      } catch (e) { msg.textContent = e.message; }
    });
  });
}
wireAcks();
live.onAlerts = async () => {
  const active = document.activeElement;
  if (active && active.closest && active.closest('form.ack')) return; // do not wipe what is being typed
  const u = new URL(location.href); u.searchParams.set('partial', '1');
  const r = await fetch(u); if (!r.ok) return;
  document.getElementById('alert-rows').innerHTML = await r.text();
  wireAcks();
};
"#;

pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, WebError> {
    let filter_state = q.state.clone().unwrap_or_else(|| "open".into());
    if !STATES.contains(&filter_state.as_str()) {
        return Err(WebError::BadRequest(format!(
            "state `{filter_state}`: use open, active, cleared, closed or all"
        )));
    }
    let site = q.site.clone().filter(|s| !s.is_empty());
    let tz = state.tz;
    let (alerts, sites) = {
        let st = filter_state.clone();
        let site = site.clone();
        blocking(move || {
            let alerts = state.reader.alerts(&AlertFilter {
                state: (st != "all").then_some(st),
                site,
                limit: Some(500),
                ..Default::default()
            })?;
            let sites = state.reader.sites()?;
            Ok((alerts, sites))
        })
        .await?
    };
    let body_rows = rows(&alerts, tz);
    if q.partial == Some(1) {
        return Ok(Html(body_rows).into_response());
    }
    let state_opts: String = STATES
        .iter()
        .map(|s| {
            let sel = if *s == filter_state { " selected" } else { "" };
            format!("<option{sel}>{s}</option>")
        })
        .collect();
    let mut site_opts = String::from("<option value=\"\">all sites</option>");
    for s in &sites {
        let sel = if site.as_deref() == Some(s.info.id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            site_opts,
            "<option value=\"{id}\"{sel}>{id} {name}</option>",
            id = escape(&s.info.id),
            name = escape(&s.info.name)
        );
    }
    let body = format!(
        "<h1>Alerts <span class=muted>{n} shown</span></h1>\
         <form class=inline method=get action=/alerts><select name=state>{state_opts}</select>\
         <select name=site>{site_opts}</select><button type=submit>Filter</button></form>\
         <p class=inline>Write token for acknowledging: <input name=token type=password autocomplete=off placeholder=\"write token\"></p>\
         <table><thead><tr><th>#</th><th>Site</th><th>Rule</th><th>Severity</th><th>State</th><th>Opened</th>\
         <th class=hide-s>Cleared</th><th>Acknowledge</th></tr></thead><tbody id=alert-rows>{body_rows}</tbody></table>",
        n = alerts.len()
    );
    Ok(layout::page(
        "Alerts",
        "Alerts",
        &body,
        &format!("{CLIENT}{SCRIPT}"),
    ))
}
