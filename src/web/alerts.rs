//! The alerts page (`/alerts`): filters by state and site, and per open alert an acknowledge form
//! with name and comment (needs the write token; `POST /api/alerts/{id}/ack`). The table refreshes
//! itself when the `/events` stream reports an alert change.

use super::html::escape;
use super::i18n::Lang;
use super::layout::{self, Nav, Ui};
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, AlertRow, StoreReader};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;

#[derive(Debug, Deserialize)]
pub struct AlertsQuery {
    pub state: Option<String>,
    pub site: Option<String>,
    /// `1`: only the table rows (for the live refresh).
    pub partial: Option<u8>,
}

const STATES: [&str; 5] = ["open", "active", "cleared", "closed", "all"];

/// Table rows; `names` maps site ids to their registered names.
fn rows(alerts: &[AlertRow], names: &HashMap<&str, &str>, ui: Ui) -> String {
    let t = ui.t();
    let mut b = String::new();
    if alerts.is_empty() {
        let _ = write!(
            b,
            "<tr><td colspan=8 class=muted>{}</td></tr>",
            t.no_alerts_match
        );
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
                "<form class=\"inline ack\" data-id=\"{id}\"><input name=by placeholder=\"{name}\" required maxlength=100>\
                 <input name=comment placeholder=\"{comment}\" maxlength=2000>\
                 <button type=submit>{ack}</button><span class=msg></span></form>",
                id = a.id,
                name = t.your_name,
                comment = t.comment,
                ack = t.acknowledge,
            )
        } else {
            format!("<span class=muted>{}</span>", t.closed_unacked)
        };
        let ack = ack + &super::acting::act_link(ui.lang, a.id);
        let _ = write!(
            b,
            "<tr data-alert=\"{id}\"><td class=n>{id}</td><td><a href=\"/sites/{site}\">{site_name}</a></td>\
             <td>{rule}<div class=muted>{ev}</div></td><td class=\"sev-{sev}\">{sev_word}<div class=muted>{off} {offences}</div></td>\
             <td>{state}</td><td>{opened}<div class=muted>{updated_word} {updated}</div></td><td class=hide-s>{cleared}</td><td>{ack}</td></tr>",
            id = a.id,
            site = escape(&a.site),
            site_name = escape(names.get(a.site.as_str()).copied().unwrap_or(&a.site)),
            rule = escape(&ui.lang.rule(&a.rule)),
            ev = escape(&super::evidence::words(ui, &a.evidence)),
            sev = escape(&a.severity),
            sev_word = escape(&ui.lang.severity(&a.severity)),
            off = a.offences,
            offences = t.offences,
            state = escape(&ui.lang.alert_state(&a.state)),
            opened = ui.time(Some(a.opened_ts)),
            updated_word = t.updated,
            updated = ui.time(Some(a.updated_ts)),
            cleared = ui.time(a.cleared_ts.or(a.closed_ts)),
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
    lang: Lang,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let t = ui.t();
    let filter_state = q.state.clone().unwrap_or_else(|| "open".into());
    if !STATES.contains(&filter_state.as_str()) {
        return Err(WebError::BadRequest(format!(
            "state `{filter_state}`: use open, active, cleared, closed or all"
        )));
    }
    let site = q.site.clone().filter(|s| !s.is_empty());
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
    let names: HashMap<&str, &str> = sites
        .iter()
        .map(|s| (s.info.id.as_str(), s.info.name.as_str()))
        .collect();
    let body_rows = rows(&alerts, &names, ui);
    if q.partial == Some(1) {
        return Ok(Html(body_rows).into_response());
    }
    let state_opts: String = STATES
        .iter()
        .map(|s| {
            let sel = if *s == filter_state { " selected" } else { "" };
            format!("<option value={s}{sel}>{}</option>", ui.lang.alert_state(s))
        })
        .collect();
    let mut site_opts = format!("<option value=\"\">{}</option>", t.all_sites);
    for s in &sites {
        let sel = if site.as_deref() == Some(s.info.id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            site_opts,
            "<option value=\"{id}\"{sel}>{name} ({id})</option>",
            id = escape(&s.info.id),
            name = escape(&s.info.name)
        );
    }
    let body = format!(
        "<h1>{title} <span class=muted>{n} {shown}</span></h1>\
         <form class=inline method=get action=/alerts><select name=state>{state_opts}</select>\
         <select name=site>{site_opts}</select><button type=submit>{filter}</button></form>\
         <p class=inline>{token_for_ack} <input name=token type=password autocomplete=off placeholder=\"{write_token}\"></p>\
         <table><thead><tr><th>#</th><th>{site}</th><th>{rule}</th><th>{severity}</th><th>{state}</th><th>{opened}</th>\
         <th class=hide-s>{cleared}</th><th>{ack}</th></tr></thead><tbody id=alert-rows>{body_rows}</tbody></table>",
        n = alerts.len(),
        title = t.nav_alerts,
        shown = t.alerts_shown,
        filter = t.filter,
        token_for_ack = t.token_for_ack,
        write_token = t.write_token,
        site = t.site,
        rule = t.rule,
        severity = t.severity,
        state = t.state,
        opened = t.opened,
        cleared = t.cleared,
        ack = t.acknowledge,
    );
    Ok(layout::page(ui, t.nav_alerts, Nav::Alerts, &body, SCRIPT))
}
