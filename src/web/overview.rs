//! The overview page: every site with status colour, latest values, AQI and data age. Plain
//! server-rendered HTML that refreshes itself.

use super::html::{escape, num};
use super::sites::{site_views, SiteStatus};
use super::{blocking, AppState, WebError};
use axum::extract::State;
use axum::response::Html;
use std::fmt::Write;

fn status_colour(s: SiteStatus) -> &'static str {
    match s {
        SiteStatus::Ok => "#2e7d32",
        SiteStatus::Warning => "#f9a825",
        SiteStatus::Violation => "#c62828",
        SiteStatus::Offline => "#616161",
        SiteStatus::Unregistered => "#6a1b9a",
    }
}

pub async fn page(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    let views = blocking(move || site_views(&state)).await?;
    let mut rows = String::new();
    for v in &views {
        let l = v.latest.as_ref().map(|l| &l.reading);
        let status = serde_json::to_value(v.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td><span class=dot style=\"background:{colour}\"></span>{status}</td>\
             <td>{id}</td><td>{name}</td><td>{street}</td><td>{kind}</td>\
             <td class=n>{pm25}</td><td class=n>{pm10}</td><td class=n>{tsp}</td><td class=n>{noise}</td>\
             <td class=n style=\"background:{aqic}\">{aqi}</td><td class=n>{age}</td></tr>\n",
            colour = status_colour(v.status),
            id = escape(&v.info.id),
            name = escape(&v.info.name),
            street = escape(&v.info.street),
            kind = v.info.kind.name(),
            pm25 = num(l.and_then(|r| r.pm25)),
            pm10 = num(l.and_then(|r| r.pm10)),
            tsp = num(l.and_then(|r| r.tsp)),
            noise = num(l.and_then(|r| r.noise_dba)),
            aqic = v.aqi_category.map_or("transparent", |c| c.colour),
            aqi = v.aqi.map_or("—".to_string(), |a| a.to_string()),
            age = v.data_age_s.map_or("—".to_string(), |a| format!("{a} s")),
        );
    }
    Ok(Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=refresh content=10><title>dustwatch — overview</title>\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{padding:.3em .5em;border-bottom:1px solid #ddd;text-align:left}}.n{{text-align:right}}\
         .dot{{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em}}</style>\
         </head><body><h1>dustwatch</h1><p>{n} sites. Data age is in event time.</p>\
         <table><thead><tr><th>Status</th><th>Site</th><th>Name</th><th>Street</th><th>Kind</th>\
         <th>PM2.5</th><th>PM10</th><th>TSP</th><th>Noise dB(A)</th><th>AQI</th><th>Data age</th></tr></thead>\
         <tbody>\n{rows}</tbody></table></body></html>",
        n = views.len()
    )))
}
