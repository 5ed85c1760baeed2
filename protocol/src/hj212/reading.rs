//! Readings → frames ([`from_reading`]) and the per-device settings frames do not carry. The
//! other way, frame → reading, is `values::read_values`, which judges each value on its own.
//!
//! Time convention: a `Reading`'s `ts` is the END of its interval. Real-time data (2011) is
//! stamped by devices at the moment of measurement, which is the end of the short window it
//! averages, so `ts = DataTime`. Minute, hour and day data (2051/2061/2031) are stamped in
//! practice with the START of their period (hour data for 10:00-11:00 carries
//! `DataTime=...100000`, day data the local midnight), so `ts = DataTime + interval`. `from_reading`
//! applies the inverse, so a device and the aggregator agree.

use super::codes::{Cn, Factor};
use super::cp::{Cp, FactorData};
use super::error::Hj212Error;
use super::num::Num;
use super::segment::{Frame, FLAG_V2017};
use super::time::{qn_from_unix_ms, DataTime, CHINA_UTC_OFFSET_MIN};
use crate::payload::{Metric, Reading};
use crate::time::SECOND;
use serde::{Deserialize, Serialize};

/// Unit of a device's particulate values (PM2.5, PM10, TSP, PM1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PmUnit {
    /// µg/m³, what most devices send (default).
    #[default]
    #[serde(rename = "ug/m3", alias = "µg/m³")]
    UgPerM3,
    /// mg/m³; values are multiplied by 1,000 on the way in.
    #[serde(rename = "mg/m3", alias = "mg/m³")]
    MgPerM3,
}

/// Per-device settings the frames themselves do not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceProfile {
    /// Unit of particulate values. Default µg/m³.
    pub unit: PmUnit,
    /// The device clock's fixed offset from UTC in minutes (DataTime and QN are local times).
    /// Default 480 (China, +08:00).
    pub utc_offset_min: i32,
    /// Interval of the device's real-time (2011) data in seconds. Default 60.
    pub realtime_interval_s: u32,
}

impl Default for DeviceProfile {
    fn default() -> Self {
        DeviceProfile {
            unit: PmUnit::UgPerM3,
            utc_offset_min: CHINA_UTC_OFFSET_MIN,
            realtime_interval_s: 60,
        }
    }
}

/// Turn a reading into a data frame for a device: `Rtd` values for 2011, `Avg` for
/// 2051/2061/2031, each with its flag, in the order of `Metric::ALL`; values written in their
/// shortest exact form (in mg/m³ when the device says so). `DataTime` follows the module's time
/// convention; QN is the reading's `ts` in local time with milliseconds. Flag is 4 (2017, no
/// reply wanted); set bit 0 to ask for a 9014 reply. The result may exceed 1,024 bytes only with
/// absurdly long values; `encode_packets` splits it then.
pub fn from_reading(
    reading: &Reading,
    cn: Cn,
    mn: &str,
    pw: &str,
    st: u16,
    device: &DeviceProfile,
) -> Result<Frame, Hj212Error> {
    let interval_s = cn
        .interval_s(device.realtime_interval_s)
        .ok_or(Hj212Error::NotData { cn: cn.code() })?;
    let start_or_end = if cn == Cn::RealTime {
        reading.ts
    } else {
        reading.ts - i64::from(interval_s) * SECOND
    };
    let bad_time = || Hj212Error::BadDataTime {
        value: format!("ts {} ms", reading.ts.ms()),
    };
    let data_time =
        DataTime::from_unix_ms(start_or_end.ms(), device.utc_offset_min).ok_or_else(bad_time)?;
    let qn = qn_from_unix_ms(reading.ts.ms(), device.utc_offset_min).ok_or_else(bad_time)?;
    let mut cp = Cp {
        data_time: Some(data_time),
        ..Cp::default()
    };
    for metric in Metric::ALL {
        let Some(value) = reading.get(metric) else {
            continue;
        };
        let factor = Factor::from_metric(metric);
        let non_numeric = || Hj212Error::NonNumeric {
            key: metric.name().to_owned(),
            value: value.to_string(),
        };
        let mut num = Num::from_f64(value).ok_or_else(non_numeric)?;
        if factor.is_particulate() && device.unit == PmUnit::MgPerM3 {
            num = num.shift(-3).ok_or_else(non_numeric)?;
        }
        let mut f = FactorData::new(factor);
        if cn == Cn::RealTime {
            f.rtd = Some(num);
        } else {
            f.avg = Some(num);
        }
        f.flag = Some(reading.flag(metric));
        cp.factors.push(f);
    }
    Ok(Frame {
        qn,
        st,
        cn,
        pw: pw.to_owned(),
        mn: mn.to_owned(),
        flag: Some(FLAG_V2017),
        packet: None,
        cp,
    })
}

#[cfg(test)]
mod tests {
    use super::super::frame::decode;
    use super::super::values::read_values;
    use super::*;
    use crate::payload::Flag;
    use crate::time::EventTime;

    /// The reading the ingest path makes of a frame.
    fn ingested(f: &Frame, d: &DeviceProfile, seq: u64, boot: u32) -> Result<Reading, Hj212Error> {
        read_values(f, d, seq, boot).map(|v| v.reading)
    }

    fn device(unit: PmUnit) -> DeviceProfile {
        DeviceProfile {
            unit,
            ..DeviceProfile::default()
        }
    }

    fn sample() -> Reading {
        let mut r = Reading {
            ts: EventTime(1_714_530_600_000), // 2024-05-01T02:30:00Z = 10:30 +08:00
            seq: 7,
            boot: 2,
            interval_s: 60,
            pm25: Some(35.1),
            pm10: Some(80.0),
            tsp: Some(120.5),
            noise_dba: Some(61.2),
            temp_c: Some(-3.5),
            ..Reading::default()
        };
        r.flags.insert("pm10".into(), Flag::C);
        r
    }

    #[test]
    fn minute_data_is_stamped_with_its_start() {
        let f = from_reading(
            &sample(),
            Cn::Minute,
            "MN1",
            "pw",
            39,
            &DeviceProfile::default(),
        )
        .unwrap();
        assert_eq!(f.cp.data_time.unwrap().to_string(), "20240501102900");
        assert_eq!(f.qn, "20240501103000000");
        assert!(f
            .cp
            .factors
            .iter()
            .all(|x| x.avg.is_some() && x.rtd.is_none()));
        let back = ingested(&f, &DeviceProfile::default(), 7, 2).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn a_flagged_zero_goes_out_but_does_not_come_back() {
        let mut r = sample();
        r.pm10 = Some(0.0);
        r.no2 = Some(41.0);
        let d = DeviceProfile::default();
        let f = from_reading(&r, Cn::RealTime, "MN1", "pw", 22, &d).unwrap();
        let text = String::from_utf8(f.encode().unwrap()).unwrap();
        assert!(text.contains("a34002-Rtd=0,a34002-Flag=C"), "{text}");
        assert!(text.contains("a21004-Rtd=41,a21004-Flag=N"), "{text}");
        let v = read_values(&f, &d, 7, 2).unwrap();
        assert_eq!(v.reading.pm10, None, "a 0 in calibration is no measurement");
        assert!(!v.reading.flags.contains_key("pm10"));
        assert_eq!(v.reading.no2, Some(41.0));
        assert_eq!(v.dropped.len(), 1);
        assert_eq!(v.dropped[0].reason.label(), "zero_flagged");
    }

    #[test]
    fn hour_and_day_intervals() {
        let mut r = sample();
        for (cn, interval) in [(Cn::Hour, 3_600), (Cn::Day, 86_400), (Cn::RealTime, 30)] {
            r.interval_s = interval;
            let d = DeviceProfile {
                realtime_interval_s: 30,
                ..DeviceProfile::default()
            };
            let f = from_reading(&r, cn, "MN1", "pw", 39, &d).unwrap();
            assert_eq!(ingested(&f, &d, 7, 2).unwrap(), r);
        }
    }

    #[test]
    fn mg_per_m3_devices_are_converted() {
        let f = from_reading(
            &sample(),
            Cn::RealTime,
            "MN1",
            "pw",
            39,
            &device(PmUnit::MgPerM3),
        )
        .unwrap();
        let text = String::from_utf8(f.encode().unwrap()).unwrap();
        assert!(text.contains("a34004-Rtd=0.0351,"), "{text}");
        assert!(text.contains("a34002-Rtd=0.080,"), "{text}");
        assert!(
            text.contains("LA-Rtd=61.2,"),
            "noise is not particulate: {text}"
        );
        let decoded = decode(text.as_bytes()).unwrap();
        let r = ingested(&decoded, &device(PmUnit::MgPerM3), 7, 2).unwrap();
        assert_eq!(r.pm25, Some(35.1));
        assert_eq!(r.pm10, Some(80.0));
        assert_eq!(r.noise_dba, Some(61.2));
        // The same frame read as µg/m³ is 1,000 times smaller.
        let r = ingested(&decoded, &DeviceProfile::default(), 7, 2).unwrap();
        assert_eq!(r.pm25, Some(0.0351));
    }

    #[test]
    fn pm1_is_kept_in_the_frame_but_not_in_readings() {
        let seg = "QN=1;ST=39;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20240501103000;a34005-Rtd=20,a34005-Flag=N;a34004-Rtd=30&&";
        let f = Frame::parse_segment(seg).unwrap();
        assert!(f.cp.factor(Factor::Pm1).is_some());
        let r = ingested(&f, &DeviceProfile::default(), 0, 0).unwrap();
        assert_eq!(r.pm25, Some(30.0));
        assert_eq!(r.flag(Metric::Pm25), Flag::N);
    }

    #[test]
    fn refusals() {
        let d = DeviceProfile::default();
        let mut f = from_reading(&sample(), Cn::RealTime, "MN1", "pw", 39, &d).unwrap();
        f.cn = Cn::DataReply;
        assert_eq!(ingested(&f, &d, 0, 0).unwrap_err().label(), "not_data");
        f.cn = Cn::RealTime;
        f.packet = Some(super::super::segment::Packet { total: 2, index: 1 });
        assert_eq!(
            ingested(&f, &d, 0, 0).unwrap_err().label(),
            "split_fragment"
        );
        f.packet = None;
        f.cp.data_time = None;
        assert_eq!(
            ingested(&f, &d, 0, 0).unwrap_err(),
            Hj212Error::MissingField { field: "DataTime" }
        );
        assert_eq!(
            from_reading(&sample(), Cn::SetInterval, "MN1", "pw", 39, &d)
                .unwrap_err()
                .label(),
            "not_data"
        );
        let mut r = sample();
        r.ts = EventTime(i64::MAX);
        assert_eq!(
            from_reading(&r, Cn::RealTime, "MN1", "pw", 39, &d)
                .unwrap_err()
                .label(),
            "bad_datatime"
        );
        r = sample();
        r.pm25 = Some(f64::NAN);
        assert_eq!(
            from_reading(&r, Cn::RealTime, "MN1", "pw", 39, &d)
                .unwrap_err()
                .label(),
            "non_numeric"
        );
    }

    #[test]
    fn profile_reads_from_toml_like_config() {
        let p: DeviceProfile =
            serde_json::from_str(r#"{"unit":"mg/m3","utc_offset_min":0}"#).unwrap();
        assert_eq!(p.unit, PmUnit::MgPerM3);
        assert_eq!(p.realtime_interval_s, 60);
        let p: DeviceProfile = serde_json::from_str(r#"{"unit":"µg/m³"}"#).unwrap();
        assert_eq!(p, DeviceProfile::default());
        assert!(serde_json::from_str::<DeviceProfile>(r#"{"units":"mg/m3"}"#).is_err());
    }
}
