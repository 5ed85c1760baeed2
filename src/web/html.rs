//! The few formats every page shares: numbers, local times and the ink that reads on a badge.
//! (Escaping is the templates' job: maud escapes every spliced value.)

use std::fmt::Write;

/// A number with one decimal, or an em dash when absent.
pub fn num(v: Option<f64>) -> String {
    let mut s = String::new();
    match v {
        Some(v) => {
            let _ = write!(s, "{v:.1}");
        }
        None => s.push('—'),
    }
    s
}

/// A time in `tz` with its date (`2026-11-29 18:05`), or an em dash.
pub fn time(ms: Option<i64>, tz: chrono_tz::Tz) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "—".into())
}

/// WCAG relative luminance of `#rrggbb`.
fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let ch = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(h.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * ch(0)? + 0.7152 * ch(2)? + 0.0722 * ch(4)?)
}

/// Black or white, whichever reads better on `bg` (`#rrggbb`), so a badge in an official colour
/// (HJ 633's maroon for "severely polluted") stays readable.
pub fn ink(bg: &str) -> &'static str {
    match luminance(bg) {
        // Contrast with black (L+0.05)/0.05 beats contrast with white 1.05/(L+0.05) above this.
        Some(l) if l > 0.179 => "#000",
        Some(_) => "#fff",
        None => "#000",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ink_is_white_on_maroon_and_black_on_yellow() {
        assert_eq!(super::ink("#7E0023"), "#fff");
        assert_eq!(super::ink("#99004C"), "#fff");
        assert_eq!(super::ink("#FFFF00"), "#000");
        assert_eq!(super::ink("#00E400"), "#000");
    }
}
