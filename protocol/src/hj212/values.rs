//! Judging each value of a data frame on its own. A frame is refused only for its envelope (CRC,
//! length, CN, DataTime...); a value that cannot be stored costs that value alone: it is left out
//! of the reading with a [`DropReason`], and the caller keeps the raw frame.

use super::codes::Factor;
use super::codes::{factor_label, Cn};
use super::cp::UnreadWhy;
use super::error::Hj212Error;
use super::num::Num;
use super::reading::{DeviceProfile, PmUnit};
use super::segment::Frame;
use crate::payload::{Flag, Metric, Reading};
use crate::time::{EventTime, SECOND};

/// Why one factor of a frame was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Outside the contract's range for the metric (`Metric::range`).
    OutOfRange,
    /// Not a finite number once converted (a mg/m³ value too large in µg/m³).
    NonFinite,
    /// A bare 0 where 0 is not physical: air pressure. Monitors report 0 on channels they lack.
    ZeroNotPhysical,
    /// A 0 flagged other than N (fault, maintenance, calibration...): no measurement.
    ZeroFlagged,
    /// A factor code dustwatch does not know.
    UnknownFactor,
    /// A key that is no `code-Rtd/Min/Avg/Max/Flag`.
    UnknownField,
    /// A value that is no decimal number.
    NonNumeric,
    /// A flag that is not one of N F M S D C T B.
    BadFlag,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::OutOfRange,
        DropReason::NonFinite,
        DropReason::ZeroNotPhysical,
        DropReason::ZeroFlagged,
        DropReason::UnknownFactor,
        DropReason::UnknownField,
        DropReason::NonNumeric,
        DropReason::BadFlag,
    ];

    /// Counter label (`dustwatch_hj212_fields_dropped_total{reason}`).
    pub fn label(self) -> &'static str {
        match self {
            DropReason::OutOfRange => "out_of_range",
            DropReason::NonFinite => "non_finite",
            DropReason::ZeroNotPhysical => "zero_not_physical",
            DropReason::ZeroFlagged => "zero_flagged",
            DropReason::UnknownFactor => "unknown_factor",
            DropReason::UnknownField => "unknown_field",
            DropReason::NonNumeric => "non_numeric",
            DropReason::BadFlag => "bad_flag",
        }
    }
}

/// One factor left out of a reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// Counter label of the factor: a code of `FACTOR_LABELS` (`other` for unknown codes).
    pub factor: &'static str,
    pub reason: DropReason,
    /// What exactly, for the dead letter keeping the raw frame.
    pub detail: String,
}

/// The values of a data frame that can be stored, and those that cannot.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    pub reading: Reading,
    /// One entry per factor and reason (an unknown factor's Min, Avg, Max and Flag count once).
    pub dropped: Vec<Dropped>,
}

impl Values {
    /// True when no value at all can be stored.
    pub fn is_empty(&self) -> bool {
        Metric::ALL.iter().all(|&m| self.reading.get(m).is_none())
    }
}

/// The reading of a data frame (2011, 2051, 2061, 2031), every value checked on its own. Uses
/// `Rtd` for 2011 and `Avg` for the others (a factor without that value is absent); particulate
/// values in mg/m³ become µg/m³; flags other than `N` go to `flags`; PM1.0 is not stored.
/// `seq` and `boot` are the caller's (HJ 212 has neither). Implausible values, a bare 0
/// pressure, a 0 flagged other than N, unknown factors and unreadable items are left out and
/// listed in `dropped`. A value flagged other than N that is plausible is kept with its flag
/// (not valid for means). Fails only for the frame as a whole (not data, split packet, no
/// DataTime); `ts`, `seq` and `interval_s` still need `Reading::validate`.
pub fn read_values(
    frame: &Frame,
    device: &DeviceProfile,
    seq: u64,
    boot: u32,
) -> Result<Values, Hj212Error> {
    let mut values = Values {
        reading: empty_reading(frame, device, seq, boot)?,
        dropped: Vec::new(),
    };
    for f in &frame.cp.factors {
        // PM1.0 has no metric: carried in the frame, deliberately not stored, not counted.
        let Some(metric) = f.factor.metric() else {
            continue;
        };
        let num = if frame.cn == Cn::RealTime {
            f.rtd.as_ref()
        } else {
            f.avg.as_ref()
        };
        let Some(num) = num else { continue };
        let flag = f.flag.unwrap_or(Flag::N);
        let code = f.factor.code();
        let verdict = match to_ug(num, f.factor, device.unit) {
            Err(e) => Err((DropReason::NonFinite, e.to_string())),
            Ok(v) => judge(metric, v, flag).map(|()| v),
        };
        match verdict {
            Ok(v) => {
                values.reading.set(metric, Some(v));
                if flag != Flag::N {
                    values.reading.flags.insert(metric.name().to_owned(), flag);
                }
            }
            Err((reason, detail)) => values.dropped.push(Dropped {
                factor: factor_label(code),
                reason,
                detail: format!("{code} ({metric}) {detail}"),
            }),
        }
    }
    let mut seen: Vec<(&str, DropReason)> = Vec::new();
    for u in &frame.cp.unread {
        let reason = match u.why {
            UnreadWhy::UnknownFactor => DropReason::UnknownFactor,
            UnreadWhy::UnknownField => DropReason::UnknownField,
            UnreadWhy::NonNumeric => DropReason::NonNumeric,
            UnreadWhy::BadFlag => DropReason::BadFlag,
        };
        let factor = factor_label(u.code());
        if seen.contains(&(u.code(), reason)) {
            continue;
        }
        seen.push((u.code(), reason));
        let detail: String = format!("`{}={}`", u.key, u.value)
            .chars()
            .take(60)
            .collect();
        values.dropped.push(Dropped {
            factor,
            reason,
            detail,
        });
    }
    Ok(values)
}

/// The reading of a data frame without values: time, interval, `seq` and `boot`. Fails for what
/// is wrong with the frame as a whole (not data, a packet of a split frame, no DataTime).
fn empty_reading(
    frame: &Frame,
    device: &DeviceProfile,
    seq: u64,
    boot: u32,
) -> Result<Reading, Hj212Error> {
    let interval_s =
        frame
            .cn
            .interval_s(device.realtime_interval_s)
            .ok_or(Hj212Error::NotData {
                cn: frame.cn.code(),
            })?;
    if let Some(p) = frame.packet.filter(|p| p.total > 1) {
        return Err(Hj212Error::SplitFragment {
            index: p.index,
            total: p.total,
        });
    }
    let data_time = frame
        .cp
        .data_time
        .ok_or(Hj212Error::MissingField { field: "DataTime" })?;
    let start_or_end = EventTime(data_time.to_unix_ms(device.utc_offset_min));
    let ts = if frame.cn == Cn::RealTime {
        start_or_end
    } else {
        start_or_end + i64::from(interval_s) * SECOND
    };
    Ok(Reading {
        ts,
        seq,
        boot,
        interval_s,
        ..Reading::default()
    })
}

fn to_ug(num: &Num, factor: Factor, unit: PmUnit) -> Result<f64, Hj212Error> {
    if factor.is_particulate() && unit == PmUnit::MgPerM3 {
        num.shift(3)
            .map(|n| n.value())
            .ok_or_else(|| Hj212Error::NonNumeric {
                key: factor.code().to_owned(),
                value: format!("{num} mg/m³ (too large in µg/m³)"),
            })
    } else {
        Ok(num.value())
    }
}

/// Whether `value` of `metric` with `flag` can be stored; otherwise the reason and what is wrong.
fn judge(metric: Metric, value: f64, flag: Flag) -> Result<(), (DropReason, String)> {
    let (lo, hi) = metric.range();
    let unit = metric.unit();
    if !value.is_finite() {
        return Err((DropReason::NonFinite, format!("is {value}")));
    }
    if value == 0.0 && metric == Metric::PressureKpa {
        return Err((
            DropReason::ZeroNotPhysical,
            format!("= 0: no air pressure is 0 (plausible {lo}..={hi} {unit}), the monitor has no such sensor"),
        ));
    }
    if value == 0.0 && flag != Flag::N {
        return Err((
            DropReason::ZeroFlagged,
            format!("= 0 flagged {}: not a measurement", flag.letter()),
        ));
    }
    if value < lo || value > hi {
        return Err((
            DropReason::OutOfRange,
            format!("= {value} outside {lo}..={hi} {unit}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(cp: &str) -> Values {
        let seg =
            format!("QN=1;ST=39;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20240501103000;{cp}&&");
        let f = Frame::parse_segment(&seg).unwrap();
        read_values(&f, &DeviceProfile::default(), 1, 0).unwrap()
    }

    fn reasons(v: &Values) -> Vec<(&'static str, &'static str)> {
        v.dropped
            .iter()
            .map(|d| (d.factor, d.reason.label()))
            .collect()
    }

    #[test]
    fn each_value_is_judged_alone() {
        let v = values(
            "a34004-Rtd=35,a34004-Flag=N;a01006-Rtd=0.0,a01006-Flag=N;a01001-Rtd=0;\
             a01002-Rtd=101;a34002-Rtd=0,a34002-Flag=D;LA-Rtd=0;a34001-Rtd=90,a34001-Flag=M",
        );
        assert_eq!(v.reading.pm25, Some(35.0));
        assert_eq!(v.reading.temp_c, Some(0.0), "0 °C is physical");
        assert_eq!(v.reading.noise_dba, Some(0.0), "an unflagged 0 is kept");
        assert_eq!(v.reading.tsp, Some(90.0));
        assert_eq!(
            v.reading.flag(Metric::Tsp),
            Flag::M,
            "flagged values keep their flag"
        );
        assert_eq!(v.reading.pressure_kpa, None);
        assert_eq!(v.reading.rh_pct, None);
        assert_eq!(v.reading.pm10, None);
        assert!(!v.reading.flags.contains_key("pm10"));
        assert_eq!(
            reasons(&v),
            [
                ("a01006", "zero_not_physical"),
                ("a01002", "out_of_range"),
                ("a34002", "zero_flagged"),
            ]
        );
        assert!(v.reading.validate().is_ok());
        assert!(v.dropped[1]
            .detail
            .contains("a01002 (rh_pct) = 101 outside"));
    }

    #[test]
    fn unknown_and_unreadable_items_are_counted_once_per_factor() {
        let v = values(
            "a34004-Rtd=35;a21004-Rtd=40,a21004-Flag=N;x99-Rtd=1,x99-Flag=N;a34002-Rtd=n/a;a34001-Flag=Z",
        );
        assert_eq!(v.reading.pm25, Some(35.0));
        assert_eq!(v.reading.no2, Some(40.0), "a gas is a metric of its own");
        assert_eq!(
            reasons(&v),
            [
                ("other", "unknown_factor"),
                ("a34002", "non_numeric"),
                ("a34001", "bad_flag"),
            ]
        );
    }

    #[test]
    fn a_frame_of_zeros_has_no_usable_value() {
        let v = values("a01006-Rtd=0;a34004-Rtd=0,a34004-Flag=D;a21004-Rtd=0,a21004-Flag=M");
        assert!(v.is_empty());
        assert_eq!(v.dropped.len(), 3);
    }
}
