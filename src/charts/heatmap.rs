//! Street heatmap: one row per site, one cell per hour, coloured by the hourly mean relative to
//! the limit (the AQI colour steps, so green is far below and maroon far above).

use super::{hex, page, text, time_label, Chart, ChartError};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    /// Row labels (site names or ids), top to bottom.
    pub rows: Vec<String>,
    /// Start of each hour column, Unix ms.
    pub hours: Vec<i64>,
    /// `values[row][hour]`: the hourly mean, absent when no valid data.
    pub values: Vec<Vec<Option<f64>>>,
    /// The value that counts as 100 % (a limit); colours step at fractions of it.
    pub limit: f64,
    pub unit: String,
    pub tz: chrono_tz::Tz,
    pub size: (u32, u32),
}

/// Colour of a value relative to the limit.
pub fn cell_colour(v: Option<f64>, limit: f64) -> RGBColor {
    let Some(v) = v else {
        return RGBColor(235, 235, 235);
    };
    let r = if limit > 0.0 { v / limit } else { 0.0 };
    hex(match r {
        r if r < 0.5 => "#00E400",
        r if r < 0.8 => "#FFFF00",
        r if r < 1.0 => "#FF7E00",
        r if r < 1.5 => "#FF0000",
        r if r < 2.0 => "#99004C",
        _ => "#7E0023",
    })
}

const TOP: i32 = 30;
const BOTTOM: i32 = 24;
const RIGHT: i32 = 10;

impl Chart for Heatmap {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static,
    {
        let title = format!("{} ({}; 100 % = {:.0})", self.title, self.unit, self.limit);
        let (w, h) = page(root, self.size, &title)?;
        let n_cols = self.hours.len().max(1) as i32;
        // The label column is as wide as the longest label needs, up to 40 % of the chart;
        // a longer label is shortened with an ellipsis to what fits (measured, not counted).
        let label_font = text(11);
        let width_of = |s: &str| {
            root.estimate_text_size(s, &label_font)
                // An SVG's text is set by the viewer's fonts, up to half again as wide as
                // the shipped one (DejaVu Sans against Noto's narrow Latin): room for that
                // keeps a label off the cells.
                .map_or(s.chars().count() as i32 * 11, |(w, _)| w as i32 * 3 / 2)
        };
        let max_label = (w * 2 / 5).max(60);
        let widest = self.rows.iter().map(|l| width_of(l)).max().unwrap_or(0);
        let left = (widest + 14).clamp(40, max_label + 12);
        let fit = |label: &str| -> String {
            if width_of(label) <= left - 12 {
                return label.to_string();
            }
            let mut chars: Vec<char> = label.chars().collect();
            while !chars.is_empty() {
                chars.pop();
                let s: String = chars.iter().collect::<String>() + "…";
                if width_of(&s) <= left - 12 {
                    return s;
                }
            }
            String::new()
        };
        // Never more rows than pixels: rows beyond that are dropped, and said so.
        let max_rows = ((h - TOP - BOTTOM) / 4).max(1) as usize;
        let rows = self.rows.len().min(max_rows);
        if rows == 0 {
            root.draw(&Text::new("—", (left, TOP + 10), text(13)))?;
            return Ok(());
        }
        let cw = ((w - left - RIGHT) as f64 / n_cols as f64).max(1.0);
        let ch = ((h - TOP - BOTTOM) as f64 / rows as f64).max(1.0);
        for (r, label) in self.rows.iter().take(rows).enumerate() {
            let y0 = TOP + (r as f64 * ch) as i32;
            let y1 = TOP + ((r + 1) as f64 * ch) as i32;
            if ch >= 10.0 {
                root.draw(&Text::new(
                    fit(label),
                    (6, y0 + (ch as i32 / 2) - 6),
                    label_font.clone(),
                ))?;
            }
            let row = self.values.get(r);
            for c in 0..self.hours.len() {
                let v = row.and_then(|vals| vals.get(c)).copied().flatten();
                let x0 = left + (c as f64 * cw) as i32;
                let x1 = left + ((c + 1) as f64 * cw) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), ((x1 - 1).max(x0), (y1 - 1).max(y0))],
                    cell_colour(v, self.limit).filled(),
                ))?;
            }
        }
        // Hour labels, at most one per 40 px.
        let every = ((40.0 / cw).ceil() as usize).max(1);
        for (c, ts) in self.hours.iter().enumerate().step_by(every) {
            root.draw(&Text::new(
                time_label(*ts, self.tz, "%H"),
                (left + (c as f64 * cw) as i32, h - BOTTOM + 6),
                text(10),
            ))?;
        }
        if rows < self.rows.len() {
            root.draw(&Text::new(
                format!("+{}", self.rows.len() - rows),
                (6, h - BOTTOM + 6),
                text(10),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::{render, Format};
    use dustwatch_protocol::time::HOUR;

    fn svg(rows: Vec<String>) -> String {
        let n = rows.len();
        let chart = Heatmap {
            title: "PM10".into(),
            rows,
            hours: (0..24).map(|h| h * HOUR).collect(),
            values: vec![vec![Some(100.0); 24]; n],
            limit: 150.0,
            unit: "µg/m³".into(),
            tz: chrono_tz::Asia::Shanghai,
            size: (900, 300),
        };
        String::from_utf8(render(&chart, Format::Svg).expect("renders")).expect("UTF-8")
    }

    #[test]
    fn labels_are_whole_when_they_fit_and_shortened_with_an_ellipsis_when_not() {
        let short = "迎宾路3号地块".to_string();
        let long = "惠济区迎宾路街道 Yingbin Road Resettlement housing 3, phase two, block C east"
            .to_string();
        let out = svg(vec![short.clone(), long.clone()]);
        assert!(out.contains(&short), "a short name in full");
        assert!(!out.contains(&long), "a long name is shortened");
        assert!(out.contains("惠济区迎宾路街道"), "from its start");
        assert!(out.contains('…'), "with an ellipsis");
    }
}
