//! Ranking bar chart: sites (or streets) by a score, worst first, one horizontal bar each.

use super::{clip, page, text, Chart, ChartError};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
pub struct Ranking {
    pub title: String,
    /// (label, value), in display order (worst first).
    pub entries: Vec<(String, f64)>,
    /// What the value is, e.g. "minutes above 150 µg/m³".
    pub unit: String,
    pub size: (u32, u32),
}

const LEFT: i32 = 170;
const TOP: i32 = 30;

impl Chart for Ranking {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static,
    {
        let (w, h) = page(root, self.size, &format!("{} ({})", self.title, self.unit))?;
        let max_rows = ((h - TOP - 6) / 12).max(1) as usize;
        let entries = &self.entries[..self.entries.len().min(max_rows)];
        if entries.is_empty() {
            root.draw(&Text::new("nothing to rank", (LEFT, TOP + 10), text(13)))?;
            return Ok(());
        }
        let max = entries
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let bar_h = ((h - TOP - 6) as f64 / entries.len() as f64).min(28.0);
        let span = (w - LEFT - 70).max(10) as f64;
        for (i, (label, v)) in entries.iter().enumerate() {
            let y0 = TOP + (i as f64 * bar_h) as i32;
            let y1 = TOP + ((i + 1) as f64 * bar_h) as i32 - 3;
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            let len = (v / max * span) as i32;
            root.draw(&Text::new(clip(label, 24), (6, y0 + 2), text(11)))?;
            root.draw(&Rectangle::new(
                [(LEFT, y0), (LEFT + len.max(1), y1.max(y0 + 1))],
                RGBColor(0xc6, 0x28, 0x28).mix(0.85).filled(),
            ))?;
            root.draw(&Text::new(
                format!("{v:.0}"),
                (LEFT + len + 6, y0 + 2),
                text(11),
            ))?;
        }
        Ok(())
    }
}
