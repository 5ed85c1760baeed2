//! AQI calendar: one cell per local day, weeks as columns and weekdays as rows, coloured in the
//! official HJ 633 category colours (domain.md section 4).

use super::{font, hex, Chart, ChartError};
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
        root.fill(&WHITE)?;
        let (w, h) = (self.size.0 as i32, self.size.1 as i32);
        let text = |size: u32, c: &RGBColor| (font::FAMILY, size).into_font().color(c);
        root.draw(&Text::new(self.title.clone(), (8, 6), text(15, &BLACK)))?;
        let Some(first) = self.days.first().map(|d| d.0) else {
            root.draw(&Text::new("no days", (LEFT, TOP), text(13, &BLACK)))?;
            return Ok(());
        };
        let offset = first.weekday().num_days_from_monday() as i64;
        let weeks = ((self.days.len() as i64 + offset + 6) / 7).max(1) as i32;
        let cell = ((w - LEFT - 8) / weeks).min((h - TOP - 30) / 7).max(4);
        for (i, name) in ["Mon", "", "Wed", "", "Fri", "", "Sun"].iter().enumerate() {
            if !name.is_empty() && cell >= 10 {
                root.draw(&Text::new(
                    *name,
                    (4, TOP + i as i32 * cell + cell / 2 - 6),
                    text(10, &BLACK),
                ))?;
            }
        }
        for (i, (day, value)) in self.days.iter().enumerate() {
            let k = i as i64 + offset;
            let (col, row) = ((k / 7) as i32, (k % 7) as i32);
            let (x0, y0) = (LEFT + col * cell, TOP + row * cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell - 2, y0 + cell - 2)],
                day_colour(*value).filled(),
            ))?;
            if day.day() == 1 || i == 0 {
                root.draw(&Text::new(
                    day.format("%b").to_string(),
                    (x0, TOP - 14),
                    text(10, &BLACK),
                ))?;
            }
            if let (Some(a), true) = (value, cell >= 24) {
                let dark = *a > 150;
                let c = if dark { WHITE } else { BLACK };
                root.draw(&Text::new(
                    a.to_string(),
                    (x0 + 3, y0 + cell / 2 - 6),
                    text(10, &c),
                ))?;
            }
        }
        // Legend: the six categories.
        let mut x = LEFT;
        let y = (TOP + 7 * cell + 8).min(h - 18);
        for (aqi_value, name) in [
            (50, "Good"),
            (100, "Moderate"),
            (150, "Light"),
            (200, "Moderate+"),
            (300, "Heavy"),
            (400, "Severe"),
        ] {
            root.draw(&Rectangle::new(
                [(x, y), (x + 10, y + 10)],
                day_colour(Some(aqi_value)).filled(),
            ))?;
            root.draw(&Text::new(name, (x + 13, y), text(10, &BLACK)))?;
            x += 80;
        }
        Ok(())
    }
}
