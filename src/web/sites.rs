//! The site view shared by the API and the pages: registry entry, latest values, AQI, status and
//! data age, all in event time.

use crate::aqi;
use crate::store::{AlertFilter, Latest, SiteRow};
use crate::web::{AppState, WebError};
use dustwatch_protocol::{AlertState, Severity, SiteInfo};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, strum::VariantArray)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SiteStatus {
    Ok,
    Warning,
    Violation,
    Offline,
    Unregistered,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    #[serde(flatten)]
    pub info: SiteInfo,
    pub registered: bool,
    pub status: SiteStatus,
    pub latest: Option<Latest>,
    pub aqi: Option<u32>,
    pub aqi_category: Option<aqi::Category>,
    /// The pollutants whose individual index is the AQI (none while the air is good).
    pub primary_pollutants: Vec<aqi::Pollutant>,
    /// Event-time age of the newest reading relative to the fleet clock, s.
    pub data_age_s: Option<i64>,
    /// Alerts not yet closed (active or waiting for the re-check).
    pub open_alerts: u32,
}

/// Build every site's view. Blocking (reads the store).
pub fn site_views(state: &AppState) -> Result<Vec<SiteView>, WebError> {
    let rows: Vec<SiteRow> = state.reader.sites()?;
    let open = state.reader.alerts(&AlertFilter {
        state: Some("open".into()),
        ..Default::default()
    })?;
    let latest = state.reader.hot().all();
    // The fleet's "now" is the clock most sites agree on (not the newest event time seen: one
    // device's wrong clock would make every other site look offline), so an accelerated or
    // replayed stream is judged the same as a live one.
    let now = state.reader.hot().fleet_clock().unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|row| {
            let l = latest.get(&row.info.id).cloned();
            // A site ahead of the fleet clock is as fresh as can be, not of negative age.
            let age = l.as_ref().map(|l| (now - l.reading.ts).max(0) / 1000);
            let mine: Vec<_> = open.iter().filter(|a| a.site == row.info.id).collect();
            let violation = mine
                .iter()
                .any(|a| a.state == AlertState::Active && a.severity >= Severity::Violation);
            let status = if !row.registered {
                SiteStatus::Unregistered
            } else if age.is_none_or(|a| a * 1000 > state.offline_after_ms) {
                SiteStatus::Offline
            } else if violation {
                SiteStatus::Violation
            } else if !mine.is_empty() {
                SiteStatus::Warning
            } else {
                SiteStatus::Ok
            };
            let detail = l.as_ref().and_then(|l| aqi::of_reading(&l.reading));
            let aqi = detail.as_ref().map(|a| a.value);
            SiteView {
                info: row.info,
                registered: row.registered,
                status,
                latest: l,
                aqi,
                aqi_category: aqi.map(aqi::category),
                primary_pollutants: detail.map(|a| a.primary).unwrap_or_default(),
                data_age_s: age,
                open_alerts: mine.len() as u32,
            }
        })
        .collect())
}

/// The fleet's event-time "now", or the wall clock before any data. The same clock ingest,
/// retention and "offline" follow (the median of the sites' newest readings), so one device with
/// a clock running ahead does not move the office's "today".
pub fn fleet_now(state: &AppState) -> i64 {
    state
        .reader
        .hot()
        .fleet_clock()
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
}

pub fn find_site(state: &AppState, id: &str) -> Result<SiteInfo, WebError> {
    state
        .reader
        .sites()?
        .into_iter()
        .find(|s| s.info.id == id)
        .map(|s| s.info)
        .ok_or_else(|| WebError::NotFound(format!("site `{id}`")))
}

/// The status word of a site (`ok`, `warning`, ...), as the API spells it.
pub fn status_name(v: &SiteView) -> String {
    v.status.to_string()
}

#[cfg(test)]
mod tests {
    use super::SiteStatus;
    use strum::VariantArray;

    #[test]
    fn status_words_are_the_api_words() {
        for &s in SiteStatus::VARIANTS {
            let json = serde_json::to_value(s).expect("a unit variant serialises");
            assert_eq!(json, serde_json::Value::String(s.to_string()), "{s:?}");
        }
    }
}
