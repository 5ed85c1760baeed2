//! HJ 212-2017 frames to store records, for both ways frames arrive: the `.../hj212` MQTT topic
//! (one frame per message, the topic names the device) and the native TCP listener
//! (`hj212_tcp.rs`, the frame's MN names the device through the registry's `[[device]]` tables).
//!
//! **Deduplication key.** HJ 212 has no sequence number or boot counter, so a frame's key is
//! derived from what identifies it on the wire: `boot = 0` and
//! `seq = DataTime as the decimal number yyyyMMddHHmmss × 10 + a digit for its CN`
//! (1 real-time 2011, 5 minute 2051, 6 hour 2061, 3 day 2031). So 2011 data of 2017-01-02 15:00:00
//! has `seq = 201701021500001`. The key does not depend on the device's registry settings (unit,
//! clock offset), a frame sent again (a device retrying after a lost 9014 reply, an MQTT
//! redelivery) stores nothing twice, and real-time and minute data with the same DataTime do not
//! collide.

use crate::metrics::Metrics;
use crate::store::{DeadLetter, Record};
use dustwatch_protocol::hj212::{self, Cn, DeviceProfile, Dropped, Frame, Hj212Error, Reassembler};
use dustwatch_protocol::{DeviceInfo, RejectReason, Rejected};
use std::collections::HashMap;
use std::sync::Arc;

/// Incomplete split frames kept per MQTT ingest (all devices together) and, by default, per TCP
/// connection.
pub const MQTT_MAX_PENDING_SPLITS: usize = 256;

/// The registry's HJ 212 devices, looked up by MN (TCP) or by (site, device) (MQTT).
#[derive(Debug, Default)]
pub struct Hj212Devices {
    by_mn: HashMap<String, DeviceInfo>,
    by_id: HashMap<(String, String), DeviceProfile>,
}

impl Hj212Devices {
    pub fn new(devices: &[DeviceInfo]) -> Self {
        let mut d = Hj212Devices::default();
        for dev in devices {
            d.by_id
                .insert((dev.site.clone(), dev.id.clone()), dev.profile());
            if let Some(mn) = &dev.mn {
                d.by_mn.insert(mn.clone(), dev.clone());
            }
        }
        d
    }

    /// The device a TCP frame's MN names, if registered with that MN.
    pub fn by_mn(&self, mn: &str) -> Option<&DeviceInfo> {
        self.by_mn.get(mn)
    }

    /// The settings of (site, device), or the defaults (µg/m³, +08:00, 60 s) when not listed.
    pub fn profile(&self, site: &str, device: &str) -> DeviceProfile {
        self.by_id
            .get(&(site.to_owned(), device.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Registered HJ 212 devices (with an MN) without a password: any PW is accepted for them.
    pub fn without_password(&self) -> Vec<&DeviceInfo> {
        let mut out: Vec<&DeviceInfo> = self
            .by_mn
            .values()
            .filter(|d| d.password.is_none())
            .collect();
        out.sort_by(|a, b| (&a.site, &a.id).cmp(&(&b.site, &b.id)));
        out
    }

    /// [`Hj212Devices::password_ok`], and for an unknown MN the same comparison against an empty
    /// password (always false), so an unknown MN costs what a wrong PW costs.
    pub fn password_ok_or_unknown(device: Option<&DeviceInfo>, pw: &str) -> bool {
        match device {
            Some(d) => Self::password_ok(d, pw),
            None => {
                let _ = constant_time_eq(pw.as_bytes(), pw.as_bytes());
                false
            }
        }
    }

    /// True when the frame's PW is the device's (or the device has no password set).
    pub fn password_ok(device: &DeviceInfo, pw: &str) -> bool {
        device
            .password
            .as_deref()
            .is_none_or(|expected| constant_time_eq(expected.as_bytes(), pw.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a frame did not become a reading.
#[derive(Debug, Clone)]
pub enum FrameReject {
    /// The codec refused it (framing, CRC, fields, codes, values).
    Frame(Hj212Error),
    /// TCP: no `[[device]]` has this MN.
    UnknownMn(String),
    /// TCP: the PW is not the device's.
    BadPassword(String),
    /// TCP: the MN or the sender's address is locked out after repeated MN/PW failures.
    LockedOut(String),
    /// Decoded, but the reading breaks the contract's limits (time, interval).
    Invalid(Rejected),
    /// Decoded, but none of its values can be stored (each one's reason listed).
    NoValues(Vec<Dropped>),
}

impl FrameReject {
    /// Label of `dustwatch_hj212_rejected_total` (`None` for readings refused by the contract's
    /// limits, counted under `dustwatch_rejected_total` with their own reason).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            FrameReject::Frame(e) => Some(e.label()),
            FrameReject::UnknownMn(_) => Some("unknown_mn"),
            FrameReject::BadPassword(_) => Some("bad_password"),
            FrameReject::LockedOut(_) => Some("locked_out"),
            FrameReject::NoValues(_) => Some("no_values"),
            FrameReject::Invalid(_) => None,
        }
    }

    /// Count it and turn it into a dead letter keeping the raw frame.
    pub fn dead_letter(&self, topic: &str, raw: &[u8], metrics: &Metrics) -> Record {
        if let Some(label) = self.label() {
            metrics.hj212.reject(label);
        }
        if let FrameReject::NoValues(dropped) = self {
            metrics.hj212.drop_fields(dropped);
        }
        let (reason, detail) = match self {
            FrameReject::Frame(e) => (RejectReason::BadFrame, format!("{}: {e}", e.label())),
            FrameReject::UnknownMn(mn) => (
                RejectReason::BadFrame,
                format!("unknown_mn: MN `{mn}` is not in the registry's [[device]] tables"),
            ),
            FrameReject::BadPassword(mn) => (
                RejectReason::BadFrame,
                format!("bad_password: PW does not match the registry's for MN `{mn}`"),
            ),
            FrameReject::LockedOut(mn) => (
                RejectReason::BadFrame,
                format!("locked_out: MN `{mn}` or the sender's address is locked out after repeated MN/PW failures"),
            ),
            FrameReject::Invalid(r) => (r.reason, r.detail.clone()),
            FrameReject::NoValues(dropped) => (
                RejectReason::NoValues,
                format!("no value of the frame can be stored: {}", summary(dropped)),
            ),
        };
        dead_letter(topic, raw, reason, detail)
    }
}

impl From<Hj212Error> for FrameReject {
    fn from(e: Hj212Error) -> Self {
        FrameReject::Frame(e)
    }
}

/// A dead letter with the raw input, truncated like every other dead letter.
pub fn dead_letter(topic: &str, raw: &[u8], reason: RejectReason, detail: String) -> Record {
    let keep = raw.len().min(dustwatch_protocol::MAX_PAYLOAD_BYTES);
    Record::DeadLetter(DeadLetter {
        topic: topic.chars().take(256).collect(),
        payload: raw.get(..keep).unwrap_or(raw).to_vec(),
        reason,
        detail,
    })
}

/// The deduplication key `(boot, seq)` of a data frame (see the module docs).
pub fn dedup_key(frame: &Frame) -> Option<(u32, u64)> {
    let digit = match frame.cn {
        Cn::RealTime => 1,
        Cn::Minute => 5,
        Cn::Hour => 6,
        Cn::Day => 3,
        _ => return None,
    };
    let digits: u64 = frame.cp.data_time?.to_string().parse().ok()?;
    Some((0, digits * 10 + digit))
}

/// A whole (reassembled) data frame of (site, device) as a reading record, each value judged on
/// its own (`hj212::read_values`), with the values left out. The frame is refused only for its
/// envelope (not data, no DataTime, a time outside the contract) or when no value is left.
pub fn reading_record(
    site: &str,
    device: &str,
    frame: &Frame,
    profile: &DeviceProfile,
) -> Result<(Record, Vec<Dropped>), FrameReject> {
    if !frame.cn.is_data() {
        return Err(Hj212Error::NotData {
            cn: frame.cn.code(),
        }
        .into());
    }
    let (boot, seq) = dedup_key(frame).ok_or(Hj212Error::MissingField { field: "DataTime" })?;
    let values = hj212::read_values(frame, profile, seq, boot)?;
    values.reading.validate().map_err(FrameReject::Invalid)?;
    if values.is_empty() {
        return Err(FrameReject::NoValues(values.dropped));
    }
    let record = Record::Reading {
        site: site.to_owned(),
        device: device.to_owned(),
        reading: values.reading,
    };
    Ok((record, values.dropped))
}

/// For a frame stored without some values: count them, and keep the raw frame as a
/// `partial_frame` dead letter naming each (so the values are not lost, only not stored).
pub fn partial_frame(
    topic: &str,
    raw: &[u8],
    dropped: &[Dropped],
    metrics: &Metrics,
) -> Option<Record> {
    if dropped.is_empty() {
        return None;
    }
    metrics.hj212.drop_fields(dropped);
    let detail = format!(
        "stored without {} value(s): {}",
        dropped.len(),
        summary(dropped)
    );
    Some(dead_letter(topic, raw, RejectReason::PartialFrame, detail))
}

fn summary(dropped: &[Dropped]) -> String {
    let parts: Vec<String> = dropped
        .iter()
        .map(|d| format!("{} {}: {}", d.factor, d.reason.label(), d.detail))
        .collect();
    let mut s = parts.join("; ");
    if s.len() > 1_000 {
        let cut = (0..=1_000)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// One value a kept frame's dead letter says was left out (read back from its detail).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedField {
    /// Counter label of the factor (`a01006`, `other`...).
    pub factor: String,
    /// `DropReason` label (`zero_not_physical`...).
    pub reason: String,
    pub detail: String,
}

/// The values left out, from the detail of a `partial_frame` or `no_values` dead letter as
/// [`partial_frame`] and [`FrameReject::dead_letter`] write it: `...: factor reason: detail; ...`
/// (no item's detail holds `; `: CP items never contain `;`). A truncated last item is kept as
/// far as it goes.
pub fn dropped_fields(detail: &str) -> Vec<DroppedField> {
    let list = ["stored without ", "no value of the frame can be stored: "]
        .iter()
        .find_map(|p| detail.strip_prefix(p))
        .map(|rest| match rest.split_once("value(s): ") {
            Some((_, list)) => list,
            None => rest,
        });
    let Some(list) = list else {
        return Vec::new();
    };
    list.split("; ")
        .filter_map(|item| {
            let (factor, rest) = item.split_once(' ')?;
            let (reason, detail) = rest.split_once(": ").unwrap_or((rest, ""));
            Some(DroppedField {
                factor: factor.to_owned(),
                reason: reason.to_owned(),
                detail: detail.to_owned(),
            })
        })
        .collect()
}

/// HJ 212 over MQTT: `dust/v1/{site}/{device}/hj212`, one frame per message. The topic names
/// the device (its unit and clock offset come from a `[[device]]` table when there is one); the
/// frame's MN and PW are not checked (the broker authenticates MQTT clients). A payload without
/// the final CRLF is accepted (MQTT frames messages itself). Packets of a split frame are
/// reassembled here; they are acknowledged as they arrive, so a crash between two packets of one
/// frame loses that frame (split frames are rare: a full dust monitor frame is ~400 bytes).
pub struct MqttFrames {
    devices: Arc<Hj212Devices>,
    metrics: Arc<Metrics>,
    splits: Reassembler,
    /// The `partial_frame` dead letter of the last decoded message, for [`MqttFrames::take_partial`].
    partial: Option<Record>,
}

impl MqttFrames {
    pub fn new(devices: Arc<Hj212Devices>, metrics: Arc<Metrics>) -> Self {
        MqttFrames {
            devices,
            metrics,
            splits: Reassembler::new(MQTT_MAX_PENDING_SPLITS),
            partial: None,
        }
    }

    /// The record of one message; `None` for a packet of a split frame still waiting for the
    /// others. When the reading was stored without some values, the raw frame's dead letter
    /// waits in [`MqttFrames::take_partial`].
    pub fn decode(
        &mut self,
        topic: &str,
        site: &str,
        device: &str,
        payload: &[u8],
    ) -> Option<Record> {
        self.metrics
            .hj212
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.partial = None;
        match self.decode_inner(site, device, payload) {
            Ok(Some((record, dropped))) => {
                self.metrics
                    .hj212
                    .readings
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.partial = partial_frame(topic, payload, &dropped, &self.metrics);
                Some(record)
            }
            Ok(None) => None,
            Err(reject) => Some(reject.dead_letter(topic, payload, &self.metrics)),
        }
    }

    /// The `partial_frame` dead letter of the message just decoded, if some of its values were
    /// left out; stored before the reading (so the message's acknowledgement covers both).
    pub fn take_partial(&mut self) -> Option<Record> {
        self.partial.take()
    }

    fn decode_inner(
        &mut self,
        site: &str,
        device: &str,
        payload: &[u8],
    ) -> Result<Option<(Record, Vec<Dropped>)>, FrameReject> {
        // C firmwares may send their string terminator.
        let end = payload.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let payload = payload.get(..end).unwrap_or_default();
        let frame = if payload.ends_with(b"\r\n") {
            hj212::decode(payload)?
        } else {
            let mut with_crlf = Vec::with_capacity(payload.len() + 2);
            with_crlf.extend_from_slice(payload);
            with_crlf.extend_from_slice(b"\r\n");
            hj212::decode(&with_crlf)?
        };
        // The reassembler keys packets by (MN, QN); the topic goes in front of the MN so two
        // devices reporting the same MN cannot mix their packets.
        let mn = frame.mn.clone();
        let keyed = Frame {
            mn: format!("{site}/{device}/{mn}"),
            ..frame
        };
        let Some(whole) = self.splits.push(keyed)? else {
            return Ok(None);
        };
        let whole = Frame { mn, ..whole };
        let profile = self.devices.profile(site, device);
        reading_record(site, device, &whole, &profile).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dustwatch_protocol::hj212::{from_reading, wrap_segment};
    use dustwatch_protocol::{EventTime, Reading};

    const SEG: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N;a34002-Rtd=312.0,a34002-Flag=N&&";

    fn frames() -> MqttFrames {
        MqttFrames::new(Arc::default(), Arc::default())
    }

    #[test]
    fn dropped_fields_read_back_what_the_dead_letter_wrote() {
        let seg = "QN=1;ST=39;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=20170102150000;\
                   a34004-Rtd=35;a01006-Rtd=0;zz9-Rtd=1;a34002-Rtd=x&&";
        let frame = hj212::decode(&wrap_segment(seg).unwrap()).unwrap();
        let (_, dropped) =
            reading_record("s1", "d1", &frame, &DeviceProfile::default()).expect("stored");
        let m = Metrics::default();
        let Some(Record::DeadLetter(d)) = partial_frame("t", b"raw", &dropped, &m) else {
            panic!("a partial frame is kept");
        };
        let back = dropped_fields(&d.detail);
        let pairs: Vec<(&str, &str)> = back
            .iter()
            .map(|f| (f.factor.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a01006", "zero_not_physical"),
                ("other", "unknown_factor"),
                ("a34002", "non_numeric")
            ]
        );
        assert!(back[0].detail.contains("no such sensor"), "{:?}", back[0]);
        let none = FrameReject::NoValues(dropped[..1].to_vec()).dead_letter("t", b"raw", &m);
        let Record::DeadLetter(d) = none else {
            panic!("a dead letter")
        };
        assert_eq!(dropped_fields(&d.detail)[0].reason, "zero_not_physical");
        assert!(dropped_fields("bad_crc: whatever").is_empty());
    }

    #[test]
    fn dedup_key_is_datatime_and_cn() {
        let f = hj212::decode(&wrap_segment(SEG).unwrap()).unwrap();
        assert_eq!(dedup_key(&f), Some((0, 201_701_021_500_001)));
        let minute = Frame {
            cn: Cn::Minute,
            ..f.clone()
        };
        assert_eq!(dedup_key(&minute), Some((0, 201_701_021_500_005)));
        let reply = Frame {
            cn: Cn::DataReply,
            ..f
        };
        assert_eq!(dedup_key(&reply), None);
    }

    #[test]
    fn mqtt_frame_with_or_without_crlf_becomes_a_reading() {
        let mut m = frames();
        let bytes = wrap_segment(SEG).unwrap();
        let with_nul = [&bytes[..], b"\0"].concat();
        let bare_nul = [&bytes[..bytes.len() - 2], b"\0"].concat();
        for payload in [&bytes[..], &bytes[..bytes.len() - 2], &with_nul, &bare_nul] {
            match m.decode("t", "s1", "d1", payload) {
                Some(Record::Reading {
                    site,
                    device,
                    reading,
                }) => {
                    assert_eq!((site.as_str(), device.as_str()), ("s1", "d1"));
                    assert_eq!(reading.pm25, Some(245.0));
                    assert_eq!(reading.pm10, Some(312.0));
                    // 2017-01-02 15:00:00 +08:00
                    assert_eq!(reading.ts, EventTime(1_483_340_400_000));
                    assert_eq!((reading.boot, reading.seq), (0, 201_701_021_500_001));
                }
                other => panic!("expected a reading, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_frames_are_dead_letters_naming_the_label() {
        let m = Arc::new(Metrics::default());
        let mut f = MqttFrames::new(Arc::default(), m.clone());
        let mut bytes = wrap_segment(SEG).unwrap();
        let n = bytes.len();
        bytes[n - 3] = if bytes[n - 3] == b'0' { b'1' } else { b'0' };
        match f.decode("t", "s1", "d1", &bytes) {
            Some(Record::DeadLetter(d)) => {
                assert_eq!(d.reason, RejectReason::BadFrame);
                assert!(d.detail.starts_with("bad_crc: "), "{}", d.detail);
                assert_eq!(d.payload, bytes);
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert_eq!(m.hj212.rejected("bad_crc"), 1);
        // An implausible value costs that value only: the rest is stored, the raw frame kept.
        let out_of_range = wrap_segment(&SEG.replace("245.0", "99999")).unwrap();
        match f.decode("t", "s1", "d1", &out_of_range) {
            Some(Record::Reading { reading, .. }) => {
                assert_eq!((reading.pm25, reading.pm10), (None, Some(312.0)));
            }
            other => panic!("expected a reading, got {other:?}"),
        }
        match f.take_partial() {
            Some(Record::DeadLetter(d)) => {
                assert_eq!(d.reason, RejectReason::PartialFrame);
                assert!(d.detail.contains("a34004 out_of_range"), "{}", d.detail);
                assert_eq!(d.payload, out_of_range);
            }
            other => panic!("expected the raw frame, got {other:?}"),
        }
        assert_eq!(
            m.hj212
                .fields_dropped("a34004", hj212::DropReason::OutOfRange),
            1
        );
        // Nothing usable: one dead letter, not lost.
        let nothing = SEG
            .replace("245.0", "99999")
            .replace("312.0", "0,a01006-Rtd=0");
        let nothing = wrap_segment(&nothing.replace("a34002-Flag=N", "a34002-Flag=D")).unwrap();
        match f.decode("t", "s1", "d1", &nothing) {
            Some(Record::DeadLetter(d)) => {
                assert_eq!(d.reason, RejectReason::NoValues);
                assert!(
                    d.detail.contains("a01006 zero_not_physical"),
                    "{}",
                    d.detail
                );
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert!(f.take_partial().is_none());
        assert_eq!(m.hj212.rejected("no_values"), 1);
    }

    #[test]
    fn split_frames_over_mqtt_are_reassembled() {
        let mut r = Reading {
            ts: EventTime(1_483_340_400_000),
            interval_s: 60,
            pm25: Some(1.0),
            ..Reading::default()
        };
        r.pm10 = Some(2.0);
        let mut frame =
            from_reading(&r, Cn::RealTime, "MN1", "pw", 39, &DeviceProfile::default()).unwrap();
        // Long parameters force a split.
        frame.cp.params.push(("BeginTime".into(), "1".repeat(600)));
        frame.cp.params.push(("EndTime".into(), "2".repeat(600)));
        let packets = hj212::encode_packets(&frame).unwrap();
        assert!(packets.len() > 1);
        let mut m = frames();
        let mut out = Vec::new();
        for p in &packets {
            out.push(m.decode("t", "s1", "d1", p));
        }
        assert!(out[..out.len() - 1].iter().all(Option::is_none));
        assert!(
            matches!(out.last(), Some(Some(Record::Reading { reading, .. })) if reading.pm10 == Some(2.0))
        );
    }

    #[test]
    fn passwords_compare_whole() {
        let d = DeviceInfo {
            site: "s".into(),
            id: "d".into(),
            mn: Some("M".into()),
            password: Some("123456".into()),
            unit: Default::default(),
            utc_offset_min: 480,
            realtime_interval_s: 60,
        };
        assert!(Hj212Devices::password_ok(&d, "123456"));
        assert!(!Hj212Devices::password_ok(&d, "12345"));
        assert!(!Hj212Devices::password_ok(&d, "123457"));
        let open = DeviceInfo {
            password: None,
            ..d
        };
        assert!(Hj212Devices::password_ok(&open, "anything"));
    }
}
