//! Site time series: PM2.5, PM10 and TSP as mean lines over a min-max envelope, the profile's limit
//! lines, alert periods shaded, the city warning level as a background band, sprinkling runs as
//! markers, and data gaps left as gaps.

use super::downsample::{by_column, segments};
use super::{font, level_colour, metric_colour, severity_colour, time_label, Chart, ChartError};
use crate::store::SeriesPoint;
use dustwatch_protocol::time::{DAY, HOUR};
use dustwatch_protocol::{Level, Metric, Severity};
use plotters::coord::Shift;
use plotters::prelude::*;

/// A horizontal limit line (from the active rule profile).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitLine {
    pub metric: Metric,
    pub value: f64,
    pub label: String,
}

/// A shaded alert period.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPeriod {
    pub from_ms: i64,
    pub to_ms: i64,
    /// `info`, `warning`, `violation` or `critical`.
    pub severity: Severity,
}

/// A span of one city warning level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelPeriod {
    pub from_ms: i64,
    pub to_ms: i64,
    pub level: Level,
}

#[derive(Debug, Clone)]
pub struct SiteSeries {
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Width of one input point, ms (the series' aggregation step).
    pub step_ms: i64,
    pub tz: chrono_tz::Tz,
    pub lines: Vec<(Metric, Vec<SeriesPoint>)>,
    pub limits: Vec<LimitLine>,
    pub alerts: Vec<AlertPeriod>,
    pub city: Vec<LevelPeriod>,
    /// Start times of sprinkling runs.
    pub sprinkles: Vec<i64>,
    pub size: (u32, u32),
    /// English words instead of Chinese.
    pub english: bool,
}

impl SiteSeries {
    fn time_format(&self) -> &'static str {
        let span = self.to_ms - self.from_ms;
        if span <= 36 * HOUR {
            "%H:%M"
        } else if span <= 8 * DAY {
            "%m-%d %H:%M"
        } else {
            "%Y-%m-%d"
        }
    }

    /// Columns actually drawn per line for a plot `width` pixels wide (exposed for tests and the
    /// benchmark).
    pub fn columns(&self, width: u32) -> Vec<Vec<super::downsample::Column>> {
        self.lines
            .iter()
            .map(|(_, pts)| by_column(pts, self.from_ms, self.to_ms, self.step_ms, width as usize))
            .collect()
    }
}

impl Chart for SiteSeries {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (from, to) = (self.from_ms, self.to_ms.max(self.from_ms + 1));
        let data_max = self
            .lines
            .iter()
            .flat_map(|(_, pts)| pts.iter())
            .filter(|p| (from..to).contains(&p.ts))
            .map(|p| if p.max.is_finite() { p.max } else { p.mean })
            .chain(self.limits.iter().map(|l| l.value))
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        let y_max = if data_max > 0.0 {
            data_max * 1.1
        } else {
            100.0
        };

        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (font::FAMILY, 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(52)
            .build_cartesian_2d(from..to, 0f64..y_max)?;
        let tz = self.tz;
        let fmt = self.time_format();
        chart
            .configure_mesh()
            .x_labels(7)
            .y_labels(6)
            .x_label_formatter(&|ms| time_label(*ms, tz, fmt))
            // One unit per chart: the lines' own when they agree (CO alone is mg/m³).
            .y_desc(match self.lines.as_slice() {
                [(m, _)] => m.unit(),
                _ => "µg/m³",
            })
            .label_style((font::FAMILY, 11))
            .axis_desc_style((font::FAMILY, 11))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(220, 220, 220))
            .draw()?;

        // City warning level: a background band for the whole height.
        chart.draw_series(self.city.iter().filter_map(|p| {
            let c = level_colour(p.level)?;
            let (a, b) = (p.from_ms.max(from), p.to_ms.min(to));
            (a < b).then(|| Rectangle::new([(a, 0.0), (b, y_max)], c.mix(0.13).filled()))
        }))?;
        // Alert periods: shaded, with a solid strip along the top.
        for p in &self.alerts {
            let (a, b) = (p.from_ms.max(from), p.to_ms.min(to));
            if a >= b {
                continue;
            }
            let c = severity_colour(p.severity);
            chart.draw_series([
                Rectangle::new([(a, 0.0), (b, y_max)], c.mix(0.16).filled()),
                Rectangle::new([(a, y_max * 0.97), (b, y_max)], c.mix(0.8).filled()),
            ])?;
        }

        // At most one column per pixel of the plot.
        let plot_w = chart.plotting_area().dim_in_pixel().0.max(1);
        let cols = self.columns(plot_w);
        let max_gap = (self.step_ms * 2).max((to - from) / plot_w as i64 * 2);
        for ((metric, _), cols) in self.lines.iter().zip(&cols) {
            let colour = metric_colour(*metric);
            // Envelope: one vertical min-max stroke per column.
            chart.draw_series(
                cols.iter().filter(|c| c.max > c.min).map(|c| {
                    PathElement::new(vec![(c.ts, c.min), (c.ts, c.max)], colour.mix(0.22))
                }),
            )?;
            let mut labelled = false;
            for seg in segments(cols, max_gap) {
                let series = chart.draw_series(LineSeries::new(
                    seg.iter().map(|c| (c.ts, c.mean)),
                    colour.stroke_width(2),
                ))?;
                if !labelled {
                    labelled = true;
                    series.label(metric_label(*metric)).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
        }

        for l in &self.limits {
            let colour = metric_colour(l.metric);
            chart.draw_series(LineSeries::new(
                [(from, l.value), (to, l.value)],
                colour.mix(0.7).stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                l.label.clone(),
                (from, l.value),
                (font::FAMILY, 10).into_font().color(&colour),
            )))?;
        }

        chart.draw_series(
            self.sprinkles
                .iter()
                .filter(|t| (from..to).contains(*t))
                .map(|t| {
                    TriangleMarker::new((*t, y_max * 0.03), 5, RGBColor(0x02, 0x77, 0xbd).filled())
                }),
        )?;

        if self.lines.iter().any(|(_, p)| !p.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font((font::FAMILY, 11))
                .draw()?;
        } else {
            let (pw, ph) = chart.plotting_area().dim_in_pixel();
            let area = chart.plotting_area().strip_coord_spec();
            area.draw(&Text::new(
                if self.english {
                    "no data in this range"
                } else {
                    "该时段无数据"
                },
                (pw as i32 / 2 - 60, ph as i32 / 2),
                (font::FAMILY, 14)
                    .into_font()
                    .color(&RGBColor(120, 120, 120)),
            ))?;
        }
        Ok(())
    }
}

pub fn metric_label(m: Metric) -> &'static str {
    match m {
        Metric::Pm25 => "PM2.5",
        Metric::Pm10 => "PM10",
        Metric::Tsp => "TSP",
        Metric::NoiseDba => "Noise",
        Metric::TempC => "Temp",
        Metric::RhPct => "RH",
        Metric::PressureKpa => "Pressure",
        Metric::WindMs => "Wind",
        Metric::WindDeg => "Wind dir",
        Metric::No2 => "NO2",
        Metric::So2 => "SO2",
        Metric::O3 => "O3",
        Metric::Co => "CO",
    }
}
