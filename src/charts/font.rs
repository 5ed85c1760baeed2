//! The chart font: a subset of Noto Sans CJK SC (SIL OFL 1.1, assets/fonts; regenerate with
//! scripts/subset-cjk-font.py) covering Latin, GB 2312 and the shipped names, registered with
//! plotters' `ab_glyph` backend once, so Chinese site names draw on a fresh machine without
//! fontconfig.

use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansSC-dustwatch.otf");
static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// The family name charts ask for.
pub const FAMILY: &str = "sans-serif";

/// Register the shipped font (idempotent, cheap after the first call).
pub fn ensure() -> Result<(), super::ChartError> {
    REGISTERED
        .get_or_init(|| {
            for style in [
                plotters::style::FontStyle::Normal,
                plotters::style::FontStyle::Bold,
            ] {
                plotters::style::register_font(FAMILY, style, FONT)
                    .map_err(|_| "the shipped Noto Sans SC font does not parse".to_string())?;
            }
            Ok(())
        })
        .clone()
        .map_err(super::ChartError::Font)
}

#[cfg(test)]
mod tests {
    use crate::charts::{render, AqiCalendar, Format};

    /// The title strip (top 30 px) of an AQI calendar PNG titled `title`, as grey levels.
    fn title_strip(title: &str) -> Vec<u8> {
        let chart = AqiCalendar {
            title: title.to_string(),
            days: Vec::new(),
            size: (560, 240),
            english: false,
        };
        let png = render(&chart, Format::Png).expect("renders");
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .expect("a PNG");
        let mut rgb = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut rgb).expect("pixels");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        // The top 30 rows, as grey levels.
        rgb[..30 * 560 * 3]
            .chunks(3)
            .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
            .collect()
    }

    /// Pixels that differ clearly between two strips.
    fn differing(a: &[u8], b: &[u8]) -> usize {
        a.iter()
            .zip(b)
            .filter(|(x, y)| x.abs_diff(**y) > 64)
            .count()
    }

    #[test]
    fn a_site_named_only_in_chinese_draws_its_glyphs() {
        let name = "迎宾路三号地块";
        let drawn = title_strip(name);
        let blank = title_strip(&" ".repeat(name.chars().count()));
        // Characters the font lacks (private use) draw as the same placeholder box each.
        let tofu = title_strip(&"\u{E000}".repeat(name.chars().count()));
        let ink = differing(&drawn, &blank);
        assert!(ink > 300, "the name leaves ink in the title: {ink} pixels");
        assert!(
            differing(&drawn, &tofu) > 300,
            "the glyphs are not placeholder boxes"
        );
        // Different characters draw differently (real glyphs, not one repeated shape).
        let other = title_strip("古荥镇学校工地");
        assert!(differing(&drawn, &other) > 300, "distinct glyphs");
    }
}
