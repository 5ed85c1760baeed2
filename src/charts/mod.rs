//! Charts (plotters): SVG for the web, PNG for reports. Each chart is plain data (built by
//! `data.rs` from the store) plus a `draw` over any plotters backend, so the same code makes both
//! formats. Text uses the shipped CJK font (`font.rs`), so names draw as registered; series are downsampled to at most one
//! column per pixel (`downsample.rs`).

pub mod aqi_calendar;
pub mod data;
pub mod downsample;
pub mod font;
pub mod heatmap;
pub mod ranking;
pub mod site_series;

use dustwatch_protocol::Severity;
use plotters::coord::Shift;
use plotters::prelude::*;
use thiserror::Error;

pub use aqi_calendar::AqiCalendar;
pub use heatmap::Heatmap;
pub use ranking::Ranking;
pub use site_series::SiteSeries;

#[derive(Debug, Error)]
pub enum ChartError {
    #[error("font: {0}")]
    Font(String),
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    #[error("chart size {0}x{1} is outside 100x60..4000x4000")]
    Size(u32, u32),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError::Draw(e.to_string())
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Svg => "image/svg+xml",
            Format::Png => "image/png",
        }
    }
}

/// Something drawable on any plotters backend.
pub trait Chart {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static;
}

/// Text in the chart font, `size` px, black (`.color(..)` for another colour).
pub fn text(size: u32) -> TextStyle<'static> {
    (font::FAMILY, size).into_font().color(&BLACK)
}

/// How the drawn charts begin: a white page with the title top left. The page's width and
/// height in pixels.
fn page<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (w, h): (u32, u32),
    title: &str,
) -> Result<(i32, i32), ChartError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    root.draw(&Text::new(title, (8, 6), text(15)))?;
    Ok((w as i32, h as i32))
}

fn check_size((w, h): (u32, u32)) -> Result<(), ChartError> {
    if !(100..=4000).contains(&w) || !(60..=4000).contains(&h) {
        return Err(ChartError::Size(w, h));
    }
    Ok(())
}

/// Render as an SVG document. Text is escaped by the SVG backend.
pub fn svg(chart: &impl Chart) -> Result<String, ChartError> {
    font::ensure()?;
    check_size(chart.size())?;
    let mut out = String::with_capacity(64 * 1024);
    {
        let root = SVGBackend::with_string(&mut out, chart.size()).into_drawing_area();
        root.fill(&WHITE)?;
        chart.draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// Render as PNG bytes, in memory.
pub fn png(chart: &impl Chart) -> Result<Vec<u8>, ChartError> {
    font::ensure()?;
    let (w, h) = chart.size();
    check_size((w, h))?;
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        chart.draw(&root)?;
        root.present()?;
    }
    let mut out = Vec::with_capacity(64 * 1024);
    let mut encoder = ::png::Encoder::new(&mut out, w, h);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    // Fast compression with the Sub filter: charts are flat colour, and this keeps a 24-hour
    // chart's PNG within a few milliseconds.
    encoder.set_compression(::png::Compression::Fast);
    encoder.set_filter(::png::Filter::Sub);
    let mut writer = encoder
        .write_header()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out)
}

/// Render in either format.
pub fn render(chart: &impl Chart, format: Format) -> Result<Vec<u8>, ChartError> {
    match format {
        Format::Svg => svg(chart).map(String::into_bytes),
        Format::Png => png(chart),
    }
}

/// A `#RRGGBB` colour (the AQI table's notation); grey when malformed.
pub fn hex(s: &str) -> RGBColor {
    let v = s
        .strip_prefix('#')
        .filter(|h| h.len() == 6)
        .and_then(|h| u32::from_str_radix(h, 16).ok());
    match v {
        Some(v) => RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8),
        None => RGBColor(128, 128, 128),
    }
}

/// Line colour of a metric.
pub fn metric_colour(m: dustwatch_protocol::Metric) -> RGBColor {
    use dustwatch_protocol::Metric;
    match m {
        Metric::Pm25 => RGBColor(0x6a, 0x1b, 0x9a),
        Metric::Pm10 => RGBColor(0xc6, 0x28, 0x28),
        Metric::Tsp => RGBColor(0x8d, 0x6e, 0x63),
        Metric::NoiseDba => RGBColor(0x15, 0x65, 0xc0),
        _ => RGBColor(0x37, 0x47, 0x4f),
    }
}

/// Background colour of a city warning level.
pub fn level_colour(l: dustwatch_protocol::Level) -> Option<RGBColor> {
    use dustwatch_protocol::Level;
    match l {
        Level::None => None,
        Level::Blue => Some(RGBColor(0x1e, 0x88, 0xe5)),
        Level::Yellow => Some(RGBColor(0xfd, 0xd8, 0x35)),
        Level::Orange => Some(RGBColor(0xfb, 0x8c, 0x00)),
        Level::Red => Some(RGBColor(0xe5, 0x39, 0x35)),
    }
}

/// Shade colour of an alert severity.
pub fn severity_colour(severity: Severity) -> RGBColor {
    match severity {
        Severity::Info => RGBColor(0x15, 0x65, 0xc0),
        Severity::Warning => RGBColor(0xf9, 0xa8, 0x25),
        Severity::Critical => RGBColor(0x6a, 0x1b, 0x9a),
        Severity::Violation => RGBColor(0xc6, 0x28, 0x28),
    }
}

/// Local time label for a Unix ms timestamp.
pub fn time_label(ms: i64, tz: chrono_tz::Tz, fmt: &str) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.with_timezone(&tz).format(fmt).to_string(),
        None => String::new(),
    }
}

/// Shorten a label to `max` characters (device-provided names can be long).
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
