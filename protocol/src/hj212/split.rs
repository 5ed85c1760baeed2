//! Frames longer than 1,024 bytes of data segment: splitting into packets (PNUM/PNO, Flag bit 1)
//! and reassembling them.

use super::codes::Cn;
use super::cp::{Cp, FactorData, Group};
use super::error::Hj212Error;
use super::frame::{wrap_segment, MAX_SEGMENT_LEN};
use super::segment::{Frame, Packet, FLAG_SPLIT, FLAG_V2017, MAX_PACKETS};
use std::collections::VecDeque;

/// Encode a frame into as few packets as needed: one plain frame when its data segment fits
/// 1,024 bytes, otherwise packets with `PNUM`/`PNO` and Flag bit 1, each carrying the same QN and
/// `DataTime` and a share of the CP groups (parameters first, then factors, never split inside a
/// factor).
pub fn encode_packets(frame: &Frame) -> Result<Vec<Vec<u8>>, Hj212Error> {
    let whole = Frame {
        packet: None,
        ..frame.clone()
    }
    .encode_segment()?;
    if whole.len() <= MAX_SEGMENT_LEN {
        return Ok(vec![wrap_segment(&whole)?]);
    }
    let flag = frame.flag.unwrap_or(FLAG_V2017) | FLAG_SPLIT;
    let template = |packet: Packet, cp: Cp| Frame {
        flag: Some(flag),
        packet: Some(packet),
        cp,
        ..frame.clone()
    };
    // Header and DataTime with the widest PNUM/PNO, so the real numbers always fit.
    let widest = Packet {
        total: MAX_PACKETS,
        index: MAX_PACKETS,
    };
    let base = template(widest, Cp::from_groups(frame.cp.data_time, Vec::new()))
        .encode_segment()?
        .len();
    let mut packets: Vec<Vec<Group>> = Vec::new();
    let mut current: Vec<Group> = Vec::new();
    let mut used = base;
    for group in frame.cp.groups() {
        let cost = group.encode().len() + 1; // `;` before it (counted even when first)
        if base + cost > MAX_SEGMENT_LEN {
            return Err(Hj212Error::Oversized { len: base + cost });
        }
        if used + cost > MAX_SEGMENT_LEN && !current.is_empty() {
            packets.push(std::mem::take(&mut current));
            used = base;
        }
        used += cost;
        current.push(group);
    }
    if !current.is_empty() {
        packets.push(current);
    }
    let total = u16::try_from(packets.len())
        .ok()
        .filter(|&n| n <= MAX_PACKETS)
        .ok_or(Hj212Error::Oversized { len: whole.len() })?;
    let mut out = Vec::with_capacity(packets.len());
    for (index, groups) in (1..=total).zip(packets) {
        let cp = Cp::from_groups(frame.cp.data_time, groups);
        let seg = template(Packet { total, index }, cp).encode_segment()?;
        out.push(wrap_segment(&seg)?);
    }
    Ok(out)
}

struct Pending {
    mn: String,
    qn: String,
    cn: Cn,
    parts: Vec<Option<Frame>>,
}

/// Collects the packets of split frames, keyed by (MN, QN), and hands back the whole frame when
/// the last packet arrives. At most `max_pending` frames wait at once; a new one beyond that
/// evicts the oldest (counted by `evicted()`), so a device that never sends its last packet costs
/// bounded memory. A repeated packet replaces the earlier copy.
pub struct Reassembler {
    max_pending: usize,
    pending: VecDeque<Pending>,
    evicted: u64,
}

impl Reassembler {
    /// `max_pending` is raised to at least 1.
    pub fn new(max_pending: usize) -> Self {
        Reassembler {
            max_pending: max_pending.max(1),
            pending: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Frames waiting for more packets.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Incomplete frames dropped to make room, since creation.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Add a frame. An unsplit frame (or PNUM=1) comes straight back; a packet of a split frame
    /// returns `None` until its frame is complete, then the merged frame (without PNUM/PNO and
    /// Flag bit 1). A packet that disagrees with earlier ones of its frame (PNUM, CN, DataTime, a
    /// value given twice) is an error and the frame is dropped.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Frame>, Hj212Error> {
        let Some(p) = frame.packet else {
            return Ok(Some(frame));
        };
        if p.total == 0 || p.index == 0 || p.index > p.total || p.total > MAX_PACKETS {
            return Err(Hj212Error::BadField {
                field: "PNO",
                value: format!("{}/{}", p.index, p.total),
                expected: "1 <= PNO <= PNUM <= 64",
            });
        }
        if p.total == 1 {
            return Ok(Some(unsplit(frame)));
        }
        let at = self
            .pending
            .iter()
            .position(|q| q.mn == frame.mn && q.qn == frame.qn);
        let at = match at {
            Some(at) => at,
            None => {
                if self.pending.len() >= self.max_pending {
                    self.pending.pop_front();
                    self.evicted += 1;
                }
                self.pending.push_back(Pending {
                    mn: frame.mn.clone(),
                    qn: frame.qn.clone(),
                    cn: frame.cn,
                    parts: vec![None; usize::from(p.total)],
                });
                self.pending.len() - 1
            }
        };
        let Some(entry) = self.pending.get_mut(at) else {
            return Ok(None);
        };
        let mismatch = if entry.parts.len() != usize::from(p.total) {
            Some(format!("PNUM {} after PNUM {}", p.total, entry.parts.len()))
        } else if entry.cn != frame.cn {
            Some(format!(
                "CN {} after CN {}",
                frame.cn.code(),
                entry.cn.code()
            ))
        } else {
            None
        };
        if let Some(detail) = mismatch {
            self.pending.remove(at);
            return Err(Hj212Error::SplitMismatch {
                detail: format!("MN {} QN {}: {detail}", frame.mn, frame.qn),
            });
        }
        if let Some(slot) = entry.parts.get_mut(usize::from(p.index) - 1) {
            *slot = Some(frame);
        }
        if entry.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let Some(done) = self.pending.remove(at) else {
            return Ok(None);
        };
        merge(done.parts.into_iter().flatten()).map(Some)
    }
}

fn unsplit(mut frame: Frame) -> Frame {
    frame.packet = None;
    frame.flag = frame.flag.map(|f| f & !FLAG_SPLIT);
    frame
}

fn merge(mut parts: impl Iterator<Item = Frame>) -> Result<Frame, Hj212Error> {
    let Some(first) = parts.next() else {
        return Err(Hj212Error::SplitMismatch {
            detail: "no packets".into(),
        });
    };
    let mut whole = unsplit(first);
    for part in parts {
        let cp = part.cp;
        match (whole.cp.data_time, cp.data_time) {
            (Some(a), Some(b)) if a != b => {
                return Err(Hj212Error::SplitMismatch {
                    detail: format!("DataTime {b} after DataTime {a}"),
                })
            }
            (None, Some(b)) => whole.cp.data_time = Some(b),
            _ => {}
        }
        for (k, v) in cp.params {
            if whole.cp.param(&k).is_some() {
                return Err(Hj212Error::DuplicateField { field: k });
            }
            whole.cp.params.push((k, v));
        }
        for f in cp.factors {
            add_factor(&mut whole.cp.factors, f)?;
        }
        whole.cp.mapped_keys.extend(cp.mapped_keys);
        whole.cp.unread.extend(cp.unread);
    }
    Ok(whole)
}

fn add_factor(factors: &mut Vec<FactorData>, f: FactorData) -> Result<(), Hj212Error> {
    match factors.iter_mut().find(|e| e.factor == f.factor) {
        Some(existing) => existing.merge(f),
        None => {
            factors.push(f);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codes::Factor;
    use super::super::frame::decode;
    use super::super::num::Num;
    use super::super::time::DataTime;
    use super::*;

    /// A frame far over 1,024 bytes: 10 factors with long values, plus a parameter.
    fn long_frame() -> Frame {
        let mut cp = Cp {
            data_time: DataTime::parse("20240501103000"),
            ..Cp::default()
        };
        cp.params.push(("RtdInterval".into(), "30".into()));
        for (i, factor) in Factor::ALL.into_iter().enumerate() {
            let mut f = FactorData::new(factor);
            let long = format!("{i}.{}", "1234567890".repeat(8));
            f.rtd = Num::parse(&long);
            f.min = Num::parse(&long);
            f.avg = Num::parse(&long);
            f.max = Num::parse(&long);
            f.flag = Some(crate::payload::Flag::N);
            cp.factors.push(f);
        }
        Frame {
            qn: "20240501103000123".into(),
            st: 39,
            cn: Cn::RealTime,
            pw: "123456".into(),
            mn: "410108HJ0000000000000001".into(),
            flag: Some(5),
            packet: None,
            cp,
        }
    }

    #[test]
    fn small_frame_is_one_packet() {
        let mut f = long_frame();
        f.cp.factors.truncate(1);
        let packets = encode_packets(&f).unwrap();
        assert_eq!(packets.len(), 1);
        assert_eq!(decode(&packets[0]).unwrap(), f);
    }

    #[test]
    fn long_frame_splits_and_reassembles_in_any_order() {
        let f = long_frame();
        let packets = encode_packets(&f).unwrap();
        assert!(packets.len() >= 2, "{}", packets.len());
        let decoded: Vec<Frame> = packets.iter().map(|p| decode(p).unwrap()).collect();
        for (i, d) in decoded.iter().enumerate() {
            assert!(d.is_split());
            assert_eq!(d.flag, Some(5 | FLAG_SPLIT));
            assert_eq!(d.packet.unwrap().index as usize, i + 1);
            assert_eq!(d.cp.data_time, f.cp.data_time);
        }
        let mut r = Reassembler::new(4);
        let mut out = None;
        for d in decoded.iter().rev() {
            assert!(out.is_none());
            out = r.push(d.clone()).unwrap();
        }
        assert_eq!(out.unwrap(), f);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn repeated_packet_replaces_and_mismatch_is_rejected() {
        let decoded: Vec<Frame> = encode_packets(&long_frame())
            .unwrap()
            .iter()
            .map(|p| decode(p).unwrap())
            .collect();
        let mut r = Reassembler::new(4);
        assert_eq!(r.push(decoded[0].clone()).unwrap(), None);
        assert_eq!(r.push(decoded[0].clone()).unwrap(), None);
        let mut other = decoded[1].clone();
        other.cn = Cn::Minute;
        assert_eq!(r.push(other).unwrap_err().label(), "split_mismatch");
        assert_eq!(r.pending(), 0);
        assert_eq!(r.push(decoded[0].clone()).unwrap(), None);
        let mut other = decoded[1].clone();
        other.cp.data_time = DataTime::parse("20240501103100");
        let mut rest = Ok(None);
        for d in std::iter::once(other).chain(decoded[2..].iter().cloned()) {
            rest = r.push(d);
        }
        assert_eq!(rest.unwrap_err().label(), "split_mismatch");
    }

    #[test]
    fn pending_frames_are_bounded() {
        let first = decode(&encode_packets(&long_frame()).unwrap()[0]).unwrap();
        let mut r = Reassembler::new(2);
        for qn in ["1", "2", "3", "4"] {
            let mut p = first.clone();
            p.qn = qn.into();
            assert_eq!(r.push(p).unwrap(), None);
        }
        assert_eq!(r.pending(), 2);
        assert_eq!(r.evicted(), 2);
    }

    #[test]
    fn unsplit_frames_pass_through() {
        let mut f = long_frame();
        f.cp.factors.truncate(1);
        let mut r = Reassembler::new(1);
        assert_eq!(r.push(f.clone()).unwrap(), Some(f.clone()));
        let mut one = f.clone();
        one.flag = Some(7);
        one.packet = Some(Packet { total: 1, index: 1 });
        let back = r.push(one).unwrap().unwrap();
        assert_eq!(back.flag, Some(5));
        assert_eq!(back.packet, None);
    }

    #[test]
    fn a_factor_too_long_for_any_packet_is_oversized() {
        let mut f = long_frame();
        f.cp.factors.truncate(1);
        f.cp.factors[0].rtd = Num::parse(&format!("1.{}", "0".repeat(1100)));
        assert_eq!(encode_packets(&f).unwrap_err().label(), "oversized");
    }
}
