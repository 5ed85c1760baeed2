//! The overview, the office's wall screen: the city level in force and since when, counts of
//! violations, warnings, offline and not-judged sites, the district map, and every site as a
//! card, worst first (status, then open alerts, then AQI). Server-rendered, then kept current by
//! the `/events` stream (`live.rs`) without reloading.

use super::html::{ink, num};
use super::i18n::Lang;
use super::layout::{self, Nav, Script, Ui};
use super::sites::{fleet_now, site_views, status_name, SiteStatus, SiteView};
use super::{blocking, AppState, WebError};
use crate::store::{AlertFilter, StateFilter};
use axum::extract::State;
use axum::response::Response;
use dustwatch_protocol::SiteKind;
use maud::{html, Markup};
use std::collections::HashMap;

/// Open alerts per site.
pub fn open_alerts(state: &AppState) -> Result<HashMap<String, usize>, WebError> {
    let open = state.reader.alerts(&AlertFilter {
        state: Some(StateFilter::Open),
        ..Default::default()
    })?;
    let mut by_site = HashMap::new();
    for a in open {
        *by_site.entry(a.site).or_insert(0) += 1;
    }
    Ok(by_site)
}

/// How urgently the office should look at a status: lower first.
fn urgency(s: SiteStatus) -> u8 {
    match s {
        SiteStatus::Violation => 0,
        SiteStatus::Warning => 1,
        SiteStatus::Offline => 2,
        SiteStatus::Unregistered => 3,
        SiteStatus::Ok => 4,
    }
}

/// Sites in the order the office should look at them.
pub fn worst_first(views: &mut [SiteView], alerts: &HashMap<String, usize>) {
    views.sort_by(|a, b| {
        urgency(a.status)
            .cmp(&urgency(b.status))
            .then_with(|| alerts.get(&b.info.id).cmp(&alerts.get(&a.info.id)))
            .then_with(|| b.aqi.cmp(&a.aqi))
            .then_with(|| a.info.id.cmp(&b.info.id))
    });
}

/// The AQI badge text and colours in the page's language.
pub fn aqi_badge(lang: Lang, v: &SiteView) -> (String, &'static str, &'static str) {
    match (v.aqi, v.aqi_category) {
        (Some(a), Some(c)) => (
            format!("AQI {a} {}", lang.aqi_category(&c)),
            c.colour,
            ink(c.colour),
        ),
        _ => ("AQI —".to_string(), "#ffffff", "#000"),
    }
}

fn card(ui: Ui, v: &SiteView, alerts: usize) -> Markup {
    let t = ui.t();
    let l = v.latest.as_ref().map(|l| &l.reading);
    let status = status_name(v);
    let (aqi_text, aqi_bg, aqi_fg) = aqi_badge(ui.lang, v);
    html! {
        div class={ "card " (status) } data-site=(v.info.id) {
            a href={ "/sites/" (v.info.id) } {
                div.name { (v.info.name) }
                div.sub {
                    (v.info.street) " · " (ui.lang.kind(v.info.kind.name())) " · " (v.info.id) " · "
                    span class={ "st " (status) } data-f="status" { (ui.lang.status(&status)) }
                }
                (values(l, "PM2.5"))
                span.aqi data-f="aqi" style={ "background:" (aqi_bg) ";color:" (aqi_fg) } { (aqi_text) }
                " "
                span.sub { (t.age) " " span data-f="age" { (age(v)) } }
                " "
                span.badge.none[alerts == 0] data-f="alerts" { (alerts) " " (t.open_suffix) }
            }
        }
    }
}

/// A site's data age (`42 s`), or an em dash.
pub fn age(v: &SiteView) -> String {
    v.data_age_s.map_or("—".to_string(), |a| format!("{a} s"))
}

/// The four latest values a card shows, each under its unit (`pm25_label`: the first's, which
/// the site page writes with its unit).
pub fn values(l: Option<&dustwatch_protocol::Reading>, pm25_label: &str) -> Markup {
    let cells = [
        ("pm25", l.and_then(|r| r.pm25), pm25_label),
        ("pm10", l.and_then(|r| r.pm10), "PM10"),
        ("tsp", l.and_then(|r| r.tsp), "TSP"),
        ("noise", l.and_then(|r| r.noise_dba), "dB(A)"),
    ];
    html! {
        div.vals {
            @for (field, value, unit) in cells {
                div { b data-f=(field) { (num(value)) } span { (unit) } }
            }
        }
    }
}

/// Today's street ranking (local day of the fleet clock): the five streets with the most
/// exceedance minutes, linked to the full rankings.
fn street_ranking(state: &AppState, ui: Ui, now: Option<i64>) -> Result<Markup, WebError> {
    let t = ui.t();
    let today = chrono::DateTime::from_timestamp_millis(now.unwrap_or_else(|| fleet_now(state)))
        .unwrap_or_default()
        .with_timezone(&ui.tz)
        .date_naive();
    let r = crate::report::rankings(state.reader.as_ref(), today, today, ui.tz)?;
    Ok(html! {
        h2 {
            (t.rank_streets) " " span.muted { (today) } " "
            a.muted href="/rankings?period=day" { (t.nav_rankings) }
        }
        table #street-ranking {
            thead { tr {
                th.n { (t.rank) } th { (t.street) } (super::rankings_text::score_header(ui.lang)) th.n { (t.alerts_opened) }
            } }
            tbody {
                @for s in r.streets.iter().take(5) {
                    tr {
                        td.n { (s.rank) } td { (s.street) } td.n { (s.minutes_per_day) } td.n { (s.alerts) }
                    }
                }
            }
        }
    })
}

/// The district map with its heading.
fn map_section(ui: Ui, views: &[SiteView]) -> Markup {
    let t = ui.t();
    html! {
        h2 { (t.map) " " span.muted { (t.map_note) } }
        (super::map::render(ui, views))
    }
}

/// The counts of sites by status, the office's first glance.
fn counts(ui: Ui, views: &[SiteView]) -> Markup {
    let t = ui.t();
    let count = |f: &dyn Fn(&SiteView) -> bool| views.iter().filter(|v| f(v)).count();
    let counts = [
        (
            "violation",
            t.st_violation,
            count(&|v| v.status == SiteStatus::Violation),
        ),
        (
            "warning",
            t.st_warning,
            count(&|v| v.status == SiteStatus::Warning),
        ),
        (
            "offline",
            t.st_offline,
            count(&|v| v.status == SiteStatus::Offline),
        ),
        (
            "not-judged",
            t.not_judged,
            // Rules judge registered construction and road sites; reference points and
            // unregistered ids are shown but never judged.
            count(&|v| v.status == SiteStatus::Unregistered || v.info.kind == SiteKind::Reference),
        ),
        ("ok", t.st_ok, count(&|v| v.status == SiteStatus::Ok)),
    ];
    html! {
        div.counts #counts {
            @for (class, word, n) in counts {
                div class={ "count-" (class) } { b { (n) } (word) }
            }
            div { b { (views.len()) } (t.sites_n) }
        }
    }
}

/// The form that sets the city level (needs the write token).
fn level_form(ui: Ui, level: dustwatch_protocol::Level) -> Markup {
    let t = ui.t();
    html! {
        h2 { (t.city_level) }
        form.inline #level-form {
            select name="level" {
                @for l in dustwatch_protocol::Level::ALL {
                    option value=(l.name()) selected[l == level] { (ui.lang.level(l)) }
                }
            }
            input name="token" type="password" placeholder=(t.write_token) autocomplete="off";
            button type="submit" { (t.level_set) }
            span.msg #level-msg {}
        }
    }
}

/// The body of the overview (also measured by the benchmark).
pub fn render(state: &AppState, ui: Ui) -> Result<Markup, WebError> {
    let t = ui.t();
    let mut views = site_views(state)?;
    let alerts = open_alerts(state)?;
    worst_first(&mut views, &alerts);
    let now = state.reader.hot().fleet_clock();
    let levels = state.reader.city_levels()?;
    let in_force = levels
        .iter()
        .rev()
        .find(|l| now.is_none_or(|n| l.ts.ms() <= n))
        .copied();
    let level = in_force.map_or(dustwatch_protocol::Level::None, |l| l.level);
    // The wall's side column, one section each: a new section is one line here.
    let side = [
        map_section(ui, &views),
        street_ranking(state, ui, now)?,
        // Tonight's patrol list during 22:00–02:00 (acting/patrol.rs renders it with maud).
        maud::PreEscaped(super::acting::patrol::overview_section(state, ui)?),
    ];
    Ok(html! {
        h1 {
            (t.city_level) ": "
            span class={ "level bigLevel " (level.name()) } #level-now { (ui.lang.level(level)) }
            // Live updates rewrite the time when the level changes.
            " " span.muted {
                (t.level_since) " "
                span #level-since { (in_force.map_or_else(|| "—".to_string(), |l| ui.time(Some(l.ts.ms())))) }
            }
        }
        (counts(ui, &views))
        div.wall {
            section {
                h2 { (t.sites) " " span.muted { (t.worst_first) } }
                div.grid #sites {
                    @for v in &views {
                        (card(ui, v, alerts.get(&v.info.id).copied().unwrap_or(0)))
                    }
                }
            }
            section { @for s in &side { (s) } }
        }
        (level_form(ui, level))
    })
}

pub async fn page(State(state): State<AppState>, lang: Lang) -> Result<Response, WebError> {
    let ui = Ui::new(lang, &state);
    let body = blocking(move || render(&state, ui)).await?;
    Ok(layout::page(
        ui,
        ui.t().nav_overview,
        Nav::Overview,
        Script::Page("overview"),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::SiteInfo;

    fn view(id: &str, status: SiteStatus, aqi: Option<u32>) -> SiteView {
        SiteView {
            info: SiteInfo {
                id: id.into(),
                name: id.into(),
                street: "s".into(),
                kind: SiteKind::Construction,
                phase: Default::default(),
                lat: None,
                lon: None,
                reference: None,
            },
            registered: true,
            status,
            latest: None,
            aqi,
            aqi_category: aqi.map(crate::aqi::category),
            primary_pollutants: Vec::new(),
            data_age_s: None,
            open_alerts: 0,
        }
    }

    #[test]
    fn violations_come_first_then_warnings_then_offline_then_the_rest() {
        let mut v = vec![
            view("a-ok-dusty", SiteStatus::Ok, Some(300)),
            view("b-offline", SiteStatus::Offline, None),
            view("c-warning-1", SiteStatus::Warning, Some(80)),
            view("d-violation", SiteStatus::Violation, Some(90)),
            view("e-warning-3", SiteStatus::Warning, Some(60)),
            view("f-ok-clean", SiteStatus::Ok, Some(20)),
        ];
        let alerts = HashMap::from([
            ("c-warning-1".to_string(), 1),
            ("e-warning-3".to_string(), 3),
        ]);
        worst_first(&mut v, &alerts);
        let order: Vec<&str> = v.iter().map(|v| v.info.id.as_str()).collect();
        assert_eq!(
            order,
            [
                "d-violation",
                "e-warning-3",
                "c-warning-1",
                "b-offline",
                "a-ok-dusty",
                "f-ok-clean"
            ]
        );
    }
}
