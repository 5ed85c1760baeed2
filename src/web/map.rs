//! The district map on the overview: an SVG drawn from the registry's latitude and longitude (no
//! tile server, works offline). A dot per site coloured by status, each street's name near its
//! sites where it covers no dot and no other name.

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
    let dots: Vec<(f64, f64)> = located.iter().map(|(_, lat, lon)| xy(*lat, *lon)).collect();
    let mut streets: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for ((v, _, _), dot) in located.iter().zip(&dots) {
        streets
            .entry(v.info.street.as_str())
            .or_default()
            .push(*dot);
    }
    let names = place_names(&streets, &dots);
    let label = ui.t().map;
    html! {
        svg.map #map viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
            rect width=(W) height=(H) fill="#fff" {}
            // Street names first, so the dots stay on top.
            @for (street, (x, y)) in &names {
                text.street x=(px(*x)) y=(px(*y)) text-anchor="middle" { (street) }
            }
            @for (v, lat, lon) in &located {
                @let (x, y) = xy(*lat, *lon);
                @let status = super::sites::status_name(v);
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

/// A box on the canvas: left, top, right, bottom.
type Box = (f64, f64, f64, f64);

fn overlaps(a: Box, b: Box) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The box a street name takes when centred on `x` with its baseline at `y` (the map's names are
/// 17 px bold, measured in Chromium: a Chinese character takes about 18 units, a Latin one 11.5).
fn name_box(name: &str, x: f64, y: f64) -> Box {
    let w: f64 = name
        .chars()
        .map(|c| if c >= '\u{2e80}' { 18.0 } else { 11.5 })
        .sum();
    // A little room either side, so two names never touch.
    (x - w / 2.0 - 4.0, y - 15.0, x + w / 2.0 + 4.0, y + 4.0)
}

/// Where each street's name goes: the nearest of a few spots around its sites (over or under
/// their middle, above, below or beside them) that stays on the canvas and covers no name already
/// placed and no dot; where every spot covers something, the one covering least.
fn place_names<'a>(
    streets: &BTreeMap<&'a str, Vec<(f64, f64)>>,
    dots: &[(f64, f64)],
) -> Vec<(&'a str, (f64, f64))> {
    const R: f64 = 9.0;
    let dot_boxes: Vec<Box> = dots
        .iter()
        .map(|(x, y)| (x - R, y - R, x + R, y + R))
        .collect();
    let mut placed: Vec<Box> = Vec::new();
    let mut out = Vec::new();
    for (street, sites) in streets {
        let n = sites.len().max(1) as f64;
        let cx = sites.iter().map(|p| p.0).sum::<f64>() / n;
        let cy = sites.iter().map(|p| p.1).sum::<f64>() / n;
        let top = sites.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let bottom = sites.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let half = name_box(street, 0.0, 0.0).2;
        let left = sites.iter().map(|p| p.0).fold(f64::MAX, f64::min);
        let right = sites.iter().map(|p| p.0).fold(f64::MIN, f64::max);
        // Nearest first: above and below the sites, beside them, then a line further out.
        let mut candidates = vec![(cx, cy - R - 5.0), (cx, cy + R + 17.0)];
        for step in 0..4 {
            let d = f64::from(step) * 21.0;
            candidates.push((cx, top - R - 5.0 - d));
            candidates.push((cx, bottom + R + 17.0 + d));
            candidates.push((left - R - half, cy + 6.0 + d));
            candidates.push((right + R + half, cy + 6.0 - d));
        }
        // Off the canvas is worst, then covering a name, then covering a dot.
        let cost = |b: Box| {
            let off = b.0 < 0.0 || b.1 < 0.0 || b.2 > W || b.3 > H;
            let names = placed.iter().filter(|p| overlaps(b, **p)).count();
            let dots = dot_boxes.iter().filter(|d| overlaps(b, **d)).count();
            usize::from(off) * 1000 + names * 10 + dots
        };
        let (x, y) = candidates
            .iter()
            .copied()
            .min_by_key(|(x, y)| cost(name_box(street, *x, *y)))
            .unwrap_or((cx, top - R - 5.0));
        placed.push(name_box(street, x, y));
        out.push((*street, (x, y)));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn street_names_cover_no_dot_and_no_other_name() {
        // Two streets whose sites interleave around the same middle, as on a dense district.
        let a = vec![(400.0, 280.0), (420.0, 300.0), (380.0, 260.0)];
        let b = vec![(405.0, 285.0), (395.0, 275.0), (410.0, 262.0)];
        let dots: Vec<(f64, f64)> = a.iter().chain(&b).copied().collect();
        let streets = BTreeMap::from([("迎宾路街道 Yingbin Road", a), ("新城街道 Xincheng", b)]);
        let names = place_names(&streets, &dots);
        assert_eq!(names.len(), 2);
        let boxes: Vec<Box> = names
            .iter()
            .map(|(n, (x, y))| name_box(n, *x, *y))
            .collect();
        assert!(!overlaps(boxes[0], boxes[1]), "{names:?}");
        for b in &boxes {
            for (x, y) in &dots {
                assert!(
                    !overlaps(*b, (x - 8.0, y - 8.0, x + 8.0, y + 8.0)),
                    "{names:?}"
                );
            }
        }
    }
}
