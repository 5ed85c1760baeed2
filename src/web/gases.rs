//! The gases section of a site page: NO2, SO2, O3 and CO of an air station with their HJ 633
//! individual indices, the AQI's primary pollutant, and a chart link per gas. Rendered only for
//! sites whose newest reading carries a gas.

use super::i18n::Lang;
use super::sites::SiteView;
use crate::aqi::{self, Period, Pollutant};
use dustwatch_protocol::{Metric, Reading};
use maud::{html, Markup};

/// The section's texts.
pub struct GasTexts {
    pub heading: &'static str,
    pub gas: &'static str,
    pub value: &'static str,
    pub iaqi: &'static str,
    pub primary: &'static str,
    pub none: &'static str,
    pub chart: &'static str,
    pub flagged: &'static str,
}

pub const ZH: GasTexts = GasTexts {
    heading: "气态污染物",
    gas: "污染物",
    value: "浓度",
    iaqi: "分指数 IAQI (1 小时)",
    primary: "首要污染物",
    none: "无（空气质量优）",
    chart: "曲线",
    flagged: "标记",
};

pub const EN: GasTexts = GasTexts {
    heading: "Gases",
    gas: "Pollutant",
    value: "Concentration",
    iaqi: "Sub-index IAQI (1 hour)",
    primary: "Primary pollutant",
    none: "none (air quality good)",
    chart: "Chart",
    flagged: "flag",
};

pub fn texts(lang: Lang) -> &'static GasTexts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

const GASES: [(Metric, Pollutant); 4] = [
    (Metric::No2, Pollutant::No2),
    (Metric::So2, Pollutant::So2),
    (Metric::O3, Pollutant::O3),
    (Metric::Co, Pollutant::Co),
];

/// The section of a site page, for the newest reading of the site; empty when it carries no gas.
/// The chart links cover the page's range [from, to).
pub fn section(lang: Lang, view: Option<&SiteView>, from: i64, to: i64) -> String {
    match view.and_then(|v| v.latest.as_ref().map(|l| (&v.info.id, &l.reading))) {
        Some((site, r)) => render(
            lang,
            site,
            r,
            &format!("from={from}&to={to}&lang={}", lang.code()),
        ),
        None => String::new(),
    }
}

fn render(lang: Lang, site: &str, r: &Reading, chart: &str) -> String {
    if !GASES.iter().any(|(m, _)| r.get(*m).is_some()) {
        return String::new();
    }
    let t = texts(lang);
    let detail = aqi::of_reading(r);
    let primary = detail
        .as_ref()
        .map(|a| a.primary.iter().map(|p| p.label()).collect::<Vec<_>>())
        .unwrap_or_default();
    let markup: Markup = html! {
        section.gases data-site=(site) {
            h2 { (t.heading) }
            table {
                thead { tr { th { (t.gas) } th { (t.value) } th { (t.iaqi) } th { (t.chart) } } }
                tbody {
                    @for (metric, pollutant) in GASES {
                        @if let Some(v) = r.get(metric) {
                            tr data-metric=(metric.name()) {
                                td { (pollutant.label()) }
                                td.n {
                                    (format!("{v:.1} {}", metric.unit()))
                                    @if !r.flag(metric).is_valid() {
                                        " (" (t.flagged) " " (r.flag(metric).letter()) ")"
                                    }
                                }
                                td.n data-f="iaqi" {
                                    @match r.valid(metric) {
                                        Some(c) => (aqi::sub_index(pollutant, c, Period::Hour).ceil() as u32),
                                        None => "—",
                                    }
                                }
                                td {
                                    a href=(format!("/charts/sites/{site}.svg?metric={}&{chart}", metric.name())) { "SVG" }
                                    " "
                                    a href=(format!("/api/sites/{site}/series?metric={}", metric.name())) { "JSON" }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some((metric, pollutant)) = GASES.iter().find(|(m, _)| r.get(*m).is_some()) {
                div.panel {
                    img.chart alt=(format!("{} {site}", pollutant.label()))
                        src=(format!("/charts/sites/{site}.svg?metric={}&{chart}", metric.name()))
                        width="900" height="300";
                }
            }
            p.primary {
                (t.primary) ": "
                b data-f="primary" {
                    @if primary.is_empty() { (t.none) } @else { (primary.join(", ")) }
                }
                @if let Some(a) = &detail { " · AQI " b data-f="aqi-value" { (a.value) } }
            }
        }
    };
    markup.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sites_with_gases_get_the_section() {
        let dust = Reading {
            pm10: Some(80.0),
            ..Reading::default()
        };
        assert_eq!(render(Lang::Zh, "s1", &dust, ""), "");
        assert_eq!(section(Lang::Zh, None, 0, 1), "");
        let station = Reading {
            pm10: Some(48.0),
            no2: Some(450.0),
            co: Some(0.7),
            ..Reading::default()
        };
        let html = render(Lang::En, "s<1", &station, "from=1&to=2");
        assert!(html.contains("data-metric=\"no2\""), "{html}");
        assert!(
            html.contains("450.0 µg/m³") && html.contains("0.7 mg/m³"),
            "{html}"
        );
        assert!(html.contains("<b data-f=\"primary\">NO2</b>"), "{html}");
        assert!(html.contains("s&lt;1"), "escaped: {html}");
        assert!(
            !html.contains("data-metric=\"so2\""),
            "absent gases are not listed"
        );
    }
}
