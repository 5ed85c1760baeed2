//! The district map on the overview: an SVG drawn from the registry's latitude and longitude (no
//! tile server, works offline). A dot per site coloured by status, each street's name at the
//! middle of its sites.

use super::layout::Ui;
use super::sites::SiteView;
use maud::{html, Markup};
use std::collections::BTreeMap;

const W: f64 = 800.0;
const H: f64 = 560.0;
/// Room around the dots: wide at the sides, where a street's name runs past its dots.
const PAD_X: f64 = 110.0;
const PAD_Y: f64 = 40.0;

/// The SVG, or a note when no site has a location.
pub fn render(ui: Ui, views: &[SiteView]) -> Markup {
    let located: Vec<(&SiteView, f64, f64)> = views
        .iter()
        .filter_map(|v| Some((v, v.info.lat?, v.info.lon?)))
        .filter(|(_, lat, lon)| lat.is_finite() && lon.is_finite())
        .collect();
    if located.is_empty() {
        return html! { p.muted { (ui.t().no_location) } };
    }
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, lat, lon) in &located {
        lat0 = lat0.min(*lat);
        lat1 = lat1.max(*lat);
        lon0 = lon0.min(*lon);
        lon1 = lon1.max(*lon);
    }
    // Equirectangular with the longitude shrunk by cos(latitude): right at a district's scale.
    let k = ((lat0 + lat1) / 2.0).to_radians().cos().max(0.1);
    let (dx, dy) = (((lon1 - lon0) * k).max(1e-4), (lat1 - lat0).max(1e-4));
    let scale = ((W - 2.0 * PAD_X) / dx).min((H - 2.0 * PAD_Y) / dy);
    let (ox, oy) = ((W - dx * scale) / 2.0, (H - dy * scale) / 2.0);
    let xy = |lat: f64, lon: f64| (ox + (lon - lon0) * k * scale, oy + (lat1 - lat) * scale);
    let mut streets: BTreeMap<&str, (f64, f64, u32)> = BTreeMap::new();
    for (v, lat, lon) in &located {
        let (x, y) = xy(*lat, *lon);
        let e = streets.entry(v.info.street.as_str()).or_default();
        e.0 += x;
        e.1 += y;
        e.2 += 1;
    }
    let label = ui.t().map;
    html! {
        svg.map #map viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
            rect width=(W) height=(H) fill="#fff" {}
            // Street names first, so the dots stay on top.
            @for (street, (x, y, n)) in &streets {
                @let n = f64::from(*n);
                text.street x=(px(x / n)) y=(px(y / n)) text-anchor="middle" dy="-12" { (street) }
            }
            @for (v, lat, lon) in &located {
                @let (x, y) = xy(*lat, *lon);
                @let status = super::overview::status_name(v);
                a href={ "/sites/" (v.info.id) } {
                    circle class={ "dot " (status) } data-site=(v.info.id) cx=(px(x)) cy=(px(y)) r="8"
                        fill=(colour(&status)) stroke="#000" stroke-width="1" {
                        title { (v.info.name) " · " (v.info.street) " · " (ui.lang.status(&status)) }
                    }
                }
            }
        }
    }
}

/// A coordinate with one decimal: enough on an 800-unit canvas.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A status's dot colour (the same as the cards' stripes).
pub fn colour(status: &str) -> &'static str {
    match status {
        "ok" => "#2e7d32",
        "warning" => "#f9a825",
        "violation" => "#c62828",
        "unregistered" => "#6a1b9a",
        _ => "#9e9e9e",
    }
}
