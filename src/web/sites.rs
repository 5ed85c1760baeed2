//! The site view shared by the API and the pages: registry entry, latest values, AQI, status and
//! data age, all in event time.

use crate::aqi;
use crate::store::{Latest, SiteRow, StoreReader};
use crate::web::{AppState, WebError};
use dustwatch_protocol::SiteInfo;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// Event-time age of the newest reading relative to the newest event time seen anywhere, s.
    pub data_age_s: Option<i64>,
}

/// Build every site's view. Blocking (reads the store).
pub fn site_views(state: &AppState) -> Result<Vec<SiteView>, WebError> {
    let rows: Vec<SiteRow> = state.reader.sites()?;
    let latest = state.reader.hot().all();
    // The fleet's "now" is the newest event time seen, so an accelerated or replayed stream is
    // judged the same as a live one.
    let now = latest.values().map(|l| l.reading.ts).max().unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|row| {
            let l = latest.get(&row.info.id).cloned();
            let age = l.as_ref().map(|l| (now - l.reading.ts) / 1000);
            let status = if !row.registered {
                SiteStatus::Unregistered
            } else if age.is_none_or(|a| a * 1000 > state.offline_after_ms) {
                SiteStatus::Offline
            } else {
                SiteStatus::Ok
            };
            let aqi = l
                .as_ref()
                .and_then(|l| aqi::aqi(l.reading.pm25, l.reading.pm10));
            SiteView {
                info: row.info,
                registered: row.registered,
                status,
                latest: l,
                aqi,
                aqi_category: aqi.map(aqi::category),
                data_age_s: age,
            }
        })
        .collect())
}
