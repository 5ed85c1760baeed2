//! The data segment: `QN=...;ST=..;CN=....;PW=...;MN=...;Flag=.;[PNUM=.;PNO=.;]CP=&&...&&`.

use super::codes::Cn;
use super::cp::Cp;
use super::error::{quote, Hj212Error};

/// Flag bit 0: the sender wants a reply (9014 / 9011).
pub const FLAG_REPLY: u8 = 1;
/// Flag bit 1: this is one packet of a split frame (PNUM/PNO present).
pub const FLAG_SPLIT: u8 = 2;
/// Flag bits 2-7 = 1: protocol version HJ 212-2017.
pub const FLAG_V2017: u8 = 4;
/// Most packets one frame may be split into (64 KiB of data segment).
pub const MAX_PACKETS: u16 = 64;

/// `PNUM` / `PNO` of a split frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    /// PNUM: number of packets, 1..=MAX_PACKETS.
    pub total: u16,
    /// PNO: this packet's number, 1..=total.
    pub index: u16,
}

/// A decoded HJ 212 data segment.
///
/// Accepted field forms (checked on decode and on encode): QN 1-20 digits (the standard writes
/// 17, `yyyyMMddHHmmssSSS`); ST 1-5 digits; PW up to 32 printable characters; MN 1-64 of
/// `[A-Za-z0-9._-]` (the standard writes 24); Flag 0-255, optional (pre-2017 devices omit it).
/// Unknown and repeated fields are rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub qn: String,
    pub st: u16,
    pub cn: Cn,
    pub pw: String,
    pub mn: String,
    pub flag: Option<u8>,
    pub packet: Option<Packet>,
    pub cp: Cp,
}

impl Frame {
    /// Flag bit 0 is set: the sender expects a 9014 data reply (or a 9011 request reply).
    pub fn wants_reply(&self) -> bool {
        self.flag.is_some_and(|f| f & FLAG_REPLY != 0)
    }

    /// One packet of a frame split over several (PNUM > 1).
    pub fn is_split(&self) -> bool {
        self.packet.is_some_and(|p| p.total > 1)
    }

    /// Parse a data segment (without `##`, length, CRC and CRLF).
    pub fn parse_segment(seg: &str) -> Result<Frame, Hj212Error> {
        let mut h = Header::default();
        let mut rest = seg;
        let cp_text = loop {
            if let Some(cp) = rest.strip_prefix("CP=") {
                break cp;
            }
            let Some((item, tail)) = rest.split_once(';') else {
                return Err(Hj212Error::MissingField { field: "CP" });
            };
            h.add(item)?;
            rest = tail;
        };
        // Some firmwares write `CP=&&...&&&&` or `CP=&&&&...&&`: extra `&`s at either end of
        // the CP are read as padding.
        let content = cp_text
            .strip_prefix("&&")
            .and_then(|c| c.strip_suffix("&&"))
            .map(|c| c.trim_matches('&'))
            .ok_or_else(|| Hj212Error::Malformed {
                detail: "CP must be written `CP=&&...&&` and end the data segment".into(),
            })?;
        if content.contains("&&") {
            return Err(Hj212Error::Malformed {
                detail: "`&&` inside CP: the data segment must end at the closing `&&`".into(),
            });
        }
        let cp = Cp::parse(content)?;
        h.finish(cp)
    }

    /// The data segment text. Fails when a field would not survive decoding (a `;` in MN, PNO
    /// beyond PNUM...); does not check the 1,024-byte limit (see `encode`/`encode_packets`).
    pub fn encode_segment(&self) -> Result<String, Hj212Error> {
        check_qn(&self.qn)?;
        check_pw(&self.pw)?;
        check_mn(&self.mn)?;
        if let Some(p) = self.packet {
            check_packet(p)?;
        }
        self.cp.check()?;
        let mut s = format!(
            "QN={};ST={};CN={};PW={};MN={};",
            self.qn,
            self.st,
            self.cn.code(),
            self.pw,
            self.mn
        );
        if let Some(flag) = self.flag {
            s.push_str(&format!("Flag={flag};"));
        }
        if let Some(p) = self.packet {
            s.push_str(&format!("PNUM={};PNO={};", p.total, p.index));
        }
        s.push_str(&format!("CP=&&{}&&", self.cp.encode()));
        Ok(s)
    }
}

#[derive(Default)]
struct Header<'a> {
    qn: Option<&'a str>,
    st: Option<&'a str>,
    cn: Option<&'a str>,
    pw: Option<&'a str>,
    mn: Option<&'a str>,
    flag: Option<&'a str>,
    pnum: Option<&'a str>,
    pno: Option<&'a str>,
}

impl<'a> Header<'a> {
    fn add(&mut self, item: &'a str) -> Result<(), Hj212Error> {
        let Some((key, value)) = item.split_once('=') else {
            return Err(Hj212Error::Malformed {
                detail: format!("field `{}` has no `=`", quote(item.as_bytes())),
            });
        };
        let slot = match key {
            "QN" => &mut self.qn,
            "ST" => &mut self.st,
            "CN" => &mut self.cn,
            "PW" => &mut self.pw,
            "MN" => &mut self.mn,
            "Flag" => &mut self.flag,
            "PNUM" => &mut self.pnum,
            "PNO" => &mut self.pno,
            _ => {
                return Err(Hj212Error::UnknownField {
                    field: quote(key.as_bytes()),
                })
            }
        };
        if slot.is_some() {
            return Err(Hj212Error::DuplicateField { field: key.into() });
        }
        *slot = Some(value);
        Ok(())
    }

    fn finish(self, cp: Cp) -> Result<Frame, Hj212Error> {
        let qn = self.qn.ok_or(Hj212Error::MissingField { field: "QN" })?;
        let st = self.st.ok_or(Hj212Error::MissingField { field: "ST" })?;
        let cn = self.cn.ok_or(Hj212Error::MissingField { field: "CN" })?;
        let pw = self.pw.ok_or(Hj212Error::MissingField { field: "PW" })?;
        let mn = self.mn.ok_or(Hj212Error::MissingField { field: "MN" })?;
        check_qn(qn)?;
        let st = parse_digits(st, 5)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| bad("ST", st, "a number 0-65535, like 39"))?;
        let cn = parse_digits(cn, 4)
            .and_then(|c| u16::try_from(c).ok())
            .and_then(Cn::from_code)
            .ok_or_else(|| Hj212Error::UnknownCn {
                cn: quote(cn.as_bytes()),
            })?;
        check_pw(pw)?;
        check_mn(mn)?;
        let flag = match self.flag {
            None => None,
            Some(f) => Some(
                parse_digits(f, 3)
                    .and_then(|v| u8::try_from(v).ok())
                    .ok_or_else(|| bad("Flag", f, "a number 0-255, like 4 or 5"))?,
            ),
        };
        let split_flag = flag.is_some_and(|f| f & FLAG_SPLIT != 0);
        let packet = match (self.pnum, self.pno) {
            (None, None) if split_flag => return Err(Hj212Error::MissingField { field: "PNUM" }),
            (None, None) => None,
            (Some(_), None) => return Err(Hj212Error::MissingField { field: "PNO" }),
            (None, Some(_)) => return Err(Hj212Error::MissingField { field: "PNUM" }),
            (Some(total), Some(index)) => {
                let num = |field: &'static str, v: &str| {
                    parse_digits(v, 5)
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| bad(field, v, "a packet count 1-64"))
                };
                let p = Packet {
                    total: num("PNUM", total)?,
                    index: num("PNO", index)?,
                };
                check_packet(p)?;
                Some(p)
            }
        };
        Ok(Frame {
            qn: qn.to_owned(),
            st,
            cn,
            pw: pw.to_owned(),
            mn: mn.to_owned(),
            flag,
            packet,
            cp,
        })
    }
}

fn bad(field: &'static str, value: &str, expected: &'static str) -> Hj212Error {
    Hj212Error::BadField {
        field,
        value: quote(value.as_bytes()),
        expected,
    }
}

/// 1..=`max_len` ASCII digits as a number.
fn parse_digits(s: &str, max_len: usize) -> Option<u32> {
    let ok = !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

fn check_qn(qn: &str) -> Result<(), Hj212Error> {
    let ok = !qn.is_empty() && qn.len() <= 20 && qn.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(bad("QN", qn, "1-20 digits, normally yyyyMMddHHmmssSSS"))
    }
}

fn check_pw(pw: &str) -> Result<(), Hj212Error> {
    let ok = pw.len() <= 32
        && pw
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b";,=&".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "PW",
            pw,
            "up to 32 printable characters without ; , = &",
        ))
    }
}

fn check_mn(mn: &str) -> Result<(), Hj212Error> {
    let ok = !mn.is_empty()
        && mn.len() <= 64
        && mn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad("MN", mn, "1-64 characters of A-Z a-z 0-9 . _ -"))
    }
}

fn check_packet(p: Packet) -> Result<(), Hj212Error> {
    if p.total == 0 || p.total > MAX_PACKETS {
        return Err(bad("PNUM", &p.total.to_string(), "a packet count 1-64"));
    }
    if p.index == 0 || p.index > p.total {
        return Err(bad("PNO", &p.index.to_string(), "a packet number 1..=PNUM"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=5;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N&&";

    fn with(from: &str, to: &str) -> String {
        SEG.replacen(from, to, 1)
    }

    fn label(seg: &str) -> &'static str {
        Frame::parse_segment(seg).unwrap_err().label()
    }

    #[test]
    fn parses_header_fields() {
        let f = Frame::parse_segment(SEG).unwrap();
        assert_eq!(f.qn, "20170102150000000");
        assert_eq!(f.st, 39);
        assert_eq!(f.cn, Cn::RealTime);
        assert_eq!(f.pw, "123456");
        assert_eq!(f.mn, "410108HJ0000000000000001");
        assert_eq!(f.flag, Some(5));
        assert!(f.wants_reply());
        assert!(!f.is_split());
        assert_eq!(f.encode_segment().unwrap(), SEG);
    }

    #[test]
    fn flag_is_optional_for_old_devices() {
        let f = Frame::parse_segment(&with("Flag=5;", "")).unwrap();
        assert_eq!(f.flag, None);
        assert!(!f.wants_reply());
    }

    #[test]
    fn missing_fields_are_named() {
        for field in ["QN", "ST", "CN", "PW", "MN"] {
            let start = SEG.find(&format!("{field}=")).unwrap();
            let end = start + SEG[start..].find(';').unwrap() + 1;
            let seg = format!("{}{}", &SEG[..start], &SEG[end..]);
            assert_eq!(
                Frame::parse_segment(&seg).unwrap_err(),
                Hj212Error::MissingField {
                    field: match field {
                        "QN" => "QN",
                        "ST" => "ST",
                        "CN" => "CN",
                        "PW" => "PW",
                        _ => "MN",
                    }
                },
            );
        }
        assert_eq!(label(&SEG[..SEG.find("CP=").unwrap()]), "missing_field");
        assert_eq!(label(&with("Flag=5", "Flag=7")), "missing_field");
        assert_eq!(label(&with("Flag=5", "Flag=7;PNUM=2")), "missing_field");
    }

    #[test]
    fn bad_fields_are_rejected() {
        assert_eq!(label(&with("CN=2011", "CN=2099")), "unknown_cn");
        assert_eq!(label(&with("CN=2011", "CN=abc")), "unknown_cn");
        assert_eq!(label(&with("ST=39", "ST=3x")), "bad_field");
        assert_eq!(label(&with("ST=39", "ST=99999")), "bad_field");
        assert_eq!(label(&with("QN=2017", "QN=x017")), "bad_field");
        assert_eq!(label(&with("MN=410108", "MN=41 0108")), "bad_field");
        assert_eq!(label(&with("Flag=5", "Flag=256")), "bad_field");
        assert_eq!(label(&with("Flag=5", "Flag=7;PNUM=2;PNO=3")), "bad_field");
        assert_eq!(label(&with("Flag=5", "Flag=7;PNUM=65;PNO=1")), "bad_field");
        assert_eq!(label(&with("Flag=5", "Flag=7;PNUM=2;PNO=0")), "bad_field");
        assert_eq!(label(&with("ST=39", "ST=39;ST=39")), "duplicate_field");
        assert_eq!(label(&with("ST=39", "XX=39")), "unknown_field");
        assert_eq!(label(&with("ST=39", "ST39")), "malformed");
        assert_eq!(label(&with("CP=&&", "CP=&")), "malformed");
        assert_eq!(label(&format!("{SEG}x")), "malformed");
        assert_eq!(
            label(&with("a34004-Flag=N", "a34004-Flag=N&&x")),
            "malformed"
        );
        // A bad value is the value's problem, not the frame's: kept unread.
        let f = Frame::parse_segment(&with("Rtd=245.0", "Rtd=24five")).unwrap();
        assert_eq!(f.cp.unread[0].key, "a34004-Rtd");
        // Extra `&&` around the CP is padding.
        let f = Frame::parse_segment(&with("&&DataTime", "&&&&DataTime").replace("N&&", "N&&&&"))
            .unwrap();
        assert_eq!(f.cp.factors.len(), 1);
    }

    #[test]
    fn encode_refuses_fields_that_would_not_decode() {
        let mut f = Frame::parse_segment(SEG).unwrap();
        f.mn = "a;b".into();
        assert_eq!(f.encode_segment().unwrap_err().label(), "bad_field");
        let mut f = Frame::parse_segment(SEG).unwrap();
        f.packet = Some(Packet { total: 2, index: 3 });
        assert_eq!(f.encode_segment().unwrap_err().label(), "bad_field");
    }
}
