//! AQI calendar: one cell per local day, weeks as columns and weekdays as rows, coloured in the
//! official HJ 633 category colours (docs/domain.md, AQI).

use super::{hex, page, text, Chart, ChartError};
use crate::aqi;
use chrono::{Datelike, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
pub struct AqiCalendar {
    pub title: String,
    /// Consecutive local days with their daily AQI (absent: no valid data that day).
    pub days: Vec<(NaiveDate, Option<u32>)>,
    pub size: (u32, u32),
    /// English weekday, month and legend words instead of Chinese.
    pub english: bool,
}

/// Fill colour of a day's AQI (official category colour; light grey when unknown).
pub fn day_colour(aqi_value: Option<u32>) -> RGBColor {
    match aqi_value {
        Some(a) => hex(aqi::category(a).colour),
        None => RGBColor(235, 235, 235),
    }
}

const LEFT: i32 = 36;
const TOP: i32 = 44;

impl Chart for AqiCalendar {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static,
    {
        let (w, h) = page(root, self.size, &self.title)?;
        let Some(first) = self.days.first().map(|d| d.0) else {
            root.draw(&Text::new("—", (LEFT, TOP), text(13)))?;
            return Ok(());
        };
        let offset = first.weekday().num_days_from_monday() as i64;
        let weeks = ((self.days.len() as i64 + offset + 6) / 7).max(1) as i32;
        let cell = ((w - LEFT - 8) / weeks).min((h - TOP - 30) / 7).max(4);
        let weekdays = if self.english {
            ["Mon", "", "Wed", "", "Fri", "", "Sun"]
        } else {
            ["周一", "", "周三", "", "周五", "", "周日"]
        };
        for (i, name) in weekdays.iter().enumerate() {
            if !name.is_empty() && cell >= 10 {
                root.draw(&Text::new(
                    *name,
                    (4, TOP + i as i32 * cell + cell / 2 - 6),
                    text(10),
                ))?;
            }
        }
        // Month names above the column a month starts in; the first (partial) month's name only
        // where it does not run into the next one.
        let mut months: Vec<(i32, String)> = Vec::new();
        for (i, (day, value)) in self.days.iter().enumerate() {
            let k = i as i64 + offset;
            let (col, row) = ((k / 7) as i32, (k % 7) as i32);
            let (x0, y0) = (LEFT + col * cell, TOP + row * cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell - 2, y0 + cell - 2)],
                day_colour(*value).filled(),
            ))?;
            if day.day() == 1 || i == 0 {
                let name = if self.english {
                    day.format("%b").to_string()
                } else {
                    format!("{}月", day.month())
                };
                months.push((x0, name));
            }
            if let (Some(a), true) = (value, cell >= 24) {
                let dark = *a > 150;
                let c = if dark { WHITE } else { BLACK };
                root.draw(&Text::new(
                    a.to_string(),
                    (x0 + 3, y0 + cell / 2 - 6),
                    text(10).color(&c),
                ))?;
            }
        }
        const MONTH_W: i32 = 30;
        let mut next_x = i32::MAX;
        for (x, name) in months.iter().rev() {
            if x + MONTH_W <= next_x {
                root.draw(&Text::new(name.clone(), (*x, TOP - 14), text(10)))?;
                next_x = *x;
            }
        }
        // Legend: the six categories.
        let mut x = LEFT;
        let y = (TOP + 7 * cell + 8).min(h - 18);
        let short = ["Good", "Moderate", "Light", "Medium", "Heavy", "Severe"];
        for (aqi_value, en) in [50, 100, 150, 200, 300, 400].into_iter().zip(short) {
            let name = if self.english {
                en
            } else {
                aqi::category(aqi_value).name_zh
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + 10, y + 10)],
                day_colour(Some(aqi_value)).filled(),
            ))?;
            root.draw(&Text::new(name, (x + 13, y), text(10)))?;
            x += if self.english { 80 } else { 70 };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::{render, Format};

    fn svg(from: NaiveDate, days: u64) -> String {
        let chart = AqiCalendar {
            title: "AQI".into(),
            days: (0..days)
                .map(|i| (from + chrono::Days::new(i), Some(80)))
                .collect(),
            size: (560, 240),
            english: false,
        };
        String::from_utf8(render(&chart, Format::Svg).expect("renders")).expect("UTF-8")
    }

    #[test]
    fn month_names_never_overlap() {
        let date = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("a date");
        // Starting three days before December: no room for November's name beside December's.
        let out = svg(date(11, 28), 35);
        assert!(out.contains(">12月<") || out.contains("12月"), "{out}");
        assert!(
            !out.contains("11月"),
            "November's name would run into December's"
        );
        // Starting with a whole November, both fit.
        let out = svg(date(11, 1), 45);
        assert!(out.contains("11月") && out.contains("12月"));
    }
}
