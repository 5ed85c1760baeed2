//! Decimal numbers as frames write them. A value keeps its text, so a decoded frame re-encodes
//! byte-identical (`245.0` stays `245.0`) and unit changes (mg/m³ ↔ µg/m³) shift the decimal point
//! exactly instead of multiplying binary floats.

use std::fmt;

/// A finite decimal number `-?digits(.digits)?`: its text as written and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Num {
    text: String,
    value: f64,
}

impl Num {
    /// Parse the strict HJ 212 form: optional `-`, digits, optionally `.` and digits. No `+`, no
    /// exponent, no spaces; values too large for an f64 are refused.
    pub fn parse(s: &str) -> Option<Num> {
        if !is_decimal(s) {
            return None;
        }
        let value: f64 = s.parse().ok()?;
        value.is_finite().then(|| Num {
            text: s.to_owned(),
            value,
        })
    }

    /// The shortest text that reads back as exactly `value` (`245.0` → `245`, `0.1` → `0.1`).
    pub fn from_f64(value: f64) -> Option<Num> {
        // f64's Display never uses an exponent and is the shortest round-trip form.
        Num::parse(&value.to_string())
    }

    /// `value` rounded to `decimals` digits after the point (at most 17).
    pub fn with_decimals(value: f64, decimals: usize) -> Option<Num> {
        let decimals = decimals.min(17);
        Num::parse(&format!("{value:.decimals$}"))
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// This number times 10^`places`, computed on the decimal text (`0.245`, 3 → `245`;
    /// `245.0`, -3 → `0.2450`). `None` when the result does not fit an f64.
    pub fn shift(&self, places: i32) -> Option<Num> {
        let (neg, body) = match self.text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, self.text.as_str()),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = format!("{int}{frac}");
        let point = i64::try_from(int.len()).ok()? + i64::from(places);
        let len = i64::try_from(digits.len()).ok()?;
        let (int_part, frac_part) = if point <= 0 {
            let zeros = "0".repeat(usize::try_from(-point).ok()?);
            ("0".to_owned(), format!("{zeros}{digits}"))
        } else if point >= len {
            let zeros = "0".repeat(usize::try_from(point - len).ok()?);
            (format!("{digits}{zeros}"), String::new())
        } else {
            let at = usize::try_from(point).ok()?;
            let (i, f) = digits.split_at_checked(at)?;
            (i.to_owned(), f.to_owned())
        };
        let int_part = int_part.trim_start_matches('0');
        let int_part = if int_part.is_empty() { "0" } else { int_part };
        let sign = if neg { "-" } else { "" };
        let text = if frac_part.is_empty() {
            format!("{sign}{int_part}")
        } else {
            format!("{sign}{int_part}.{frac_part}")
        };
        Num::parse(&text)
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_decimal(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_plain_decimals() {
        for ok in ["0", "245.0", "-1.5", "102.35", "45", "007", "-0"] {
            assert_eq!(Num::parse(ok).map(|n| n.to_string()), Some(ok.to_owned()));
        }
        for bad in [
            "", "-", "1.", ".5", "+1", "1e3", "1,5", " 1", "1 ", "NaN", "inf", "--1", "1.2.3",
            "0x10",
        ] {
            assert!(Num::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Num::parse(&"9".repeat(400)).is_none(), "overflows f64");
    }

    #[test]
    fn from_f64_is_shortest_and_exact() {
        assert_eq!(Num::from_f64(245.0).unwrap().as_str(), "245");
        assert_eq!(Num::from_f64(0.1).unwrap().as_str(), "0.1");
        assert_eq!(Num::from_f64(1e21).unwrap().value(), 1e21);
        assert_eq!(Num::from_f64(1e-7).unwrap().value(), 1e-7);
        assert!(Num::from_f64(f64::NAN).is_none());
        assert_eq!(Num::with_decimals(1.25, 1).unwrap().as_str(), "1.2");
    }

    #[test]
    fn shift_moves_the_point_exactly() {
        let s = |t: &str, p: i32| Num::parse(t).unwrap().shift(p).unwrap().to_string();
        assert_eq!(s("0.245", 3), "245");
        assert_eq!(s("0.0245", 3), "24.5");
        assert_eq!(s("1.2", 3), "1200");
        assert_eq!(s("245.0", -3), "0.2450");
        assert_eq!(s("0.2450", 3), "245.0");
        assert_eq!(s("-12.5", -3), "-0.0125");
        assert_eq!(s("35.1", -3), "0.0351");
        assert_eq!(
            Num::parse("0.0351").unwrap().shift(3).unwrap().value(),
            35.1
        );
    }
}
