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
