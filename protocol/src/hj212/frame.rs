//! The frame around a data segment: `##` + 4-digit length + segment + 4 hex CRC digits + CRLF.
//!
//! On a byte stream (TCP), split frames at CRLF — a valid frame holds no CR or LF before its end —
//! with a cap of [`MAX_FRAME_LEN`] bytes per line, and pass each line including its CRLF to
//! [`decode`]. Splitting by the declared length instead would turn a wrong length into a CRC error.

use super::crc::crc16;
use super::error::{quote, Hj212Error};
use super::segment::Frame;

/// Largest data segment of one frame, in bytes.
pub const MAX_SEGMENT_LEN: usize = 1024;
/// `##` + 4 length digits + 4 CRC digits + CRLF.
pub const FRAME_OVERHEAD: usize = 12;
/// Largest whole frame, in bytes.
pub const MAX_FRAME_LEN: usize = MAX_SEGMENT_LEN + FRAME_OVERHEAD;

/// The data segment of one complete frame (`bytes` holds exactly one frame, CRLF included), after
/// checking header, length, CRC, CRLF and that the segment is printable ASCII.
pub fn unwrap_segment(bytes: &[u8]) -> Result<&str, Hj212Error> {
    let head_len = bytes.len().min(2);
    if bytes.get(..head_len) != b"##".get(..head_len) {
        return Err(Hj212Error::BadHeader {
            start: quote(bytes.get(..8).unwrap_or(bytes)),
        });
    }
    let Some(len_field) = bytes.get(2..6) else {
        return Err(Hj212Error::Truncated {
            expected: FRAME_OVERHEAD,
            got: bytes.len(),
        });
    };
    if !len_field.iter().all(u8::is_ascii_digit) {
        return Err(Hj212Error::BadLength {
            field: quote(len_field),
        });
    }
    let declared = len_field
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    if declared > MAX_SEGMENT_LEN {
        return Err(Hj212Error::Oversized { len: declared });
    }
    let total = declared + FRAME_OVERHEAD;
    let ends_crlf = bytes.ends_with(b"\r\n");
    let actual = bytes.len().saturating_sub(FRAME_OVERHEAD);
    if bytes.len() < total {
        return Err(if ends_crlf {
            Hj212Error::LengthMismatch { declared, actual }
        } else {
            Hj212Error::Truncated {
                expected: total,
                got: bytes.len(),
            }
        });
    }
    if bytes.len() > total {
        let crlf_at_declared_end = bytes.get(total - 2..total) == Some(b"\r\n".as_slice());
        return Err(if crlf_at_declared_end {
            Hj212Error::TrailingBytes {
                extra: bytes.len() - total,
            }
        } else if ends_crlf && actual > MAX_SEGMENT_LEN {
            Hj212Error::Oversized { len: actual }
        } else if ends_crlf {
            Hj212Error::LengthMismatch { declared, actual }
        } else {
            Hj212Error::MissingCrlf
        });
    }
    if !ends_crlf {
        return Err(Hj212Error::MissingCrlf);
    }
    let segment = bytes.get(6..6 + declared).unwrap_or_default();
    let crc_field = bytes.get(6 + declared..10 + declared).unwrap_or_default();
    let computed = crc16(segment);
    let got = std::str::from_utf8(crc_field)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|s| u16::from_str_radix(s, 16).ok());
    if got != Some(computed) {
        return Err(Hj212Error::BadCrc {
            computed,
            got: quote(crc_field),
        });
    }
    if let Some(offset) = segment.iter().position(|b| !(b' '..=b'~').contains(b)) {
        return Err(Hj212Error::BadByte {
            offset,
            byte: segment.get(offset).copied().unwrap_or_default(),
        });
    }
    std::str::from_utf8(segment).map_err(|e| Hj212Error::BadByte {
        offset: e.valid_up_to(),
        byte: 0,
    })
}

/// Wrap a data segment into a frame: `##` + length + segment + uppercase CRC + CRLF.
pub fn wrap_segment(segment: &str) -> Result<Vec<u8>, Hj212Error> {
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(Hj212Error::Oversized { len: segment.len() });
    }
    let crc = crc16(segment.as_bytes());
    Ok(format!("##{:04}{segment}{crc:04X}\r\n", segment.len()).into_bytes())
}

/// Decode one complete frame (CRLF included).
/// NUL bytes before or after the frame (C firmwares sending their string terminator) are
/// padding, not data.
pub fn decode(bytes: &[u8]) -> Result<Frame, Hj212Error> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    Frame::parse_segment(unwrap_segment(bytes.get(start..end).unwrap_or_default())?)
}

/// Encode a frame whose data segment fits 1,024 bytes; use `encode_packets` for longer ones.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, Hj212Error> {
    wrap_segment(&frame.encode_segment()?)
}

impl Frame {
    /// Decode one complete frame (CRLF included). Same as [`decode`].
    pub fn decode(bytes: &[u8]) -> Result<Frame, Hj212Error> {
        decode(bytes)
    }

    /// Encode into one frame. Same as [`encode`].
    pub fn encode(&self) -> Result<Vec<u8>, Hj212Error> {
        encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N&&";

    fn frame() -> Vec<u8> {
        wrap_segment(SEG).unwrap()
    }

    fn label(bytes: &[u8]) -> &'static str {
        decode(bytes).unwrap_err().label()
    }

    #[test]
    fn wraps_with_length_and_uppercase_crc() {
        let f = frame();
        let crc = crc16(SEG.as_bytes());
        assert_eq!(
            f,
            format!("##{:04}{SEG}{crc:04X}\r\n", SEG.len()).into_bytes()
        );
        assert_eq!(unwrap_segment(&f).unwrap(), SEG);
    }

    #[test]
    fn accepts_lowercase_crc() {
        let mut f = frame();
        let n = f.len();
        f[n - 6..n - 2].make_ascii_lowercase();
        assert!(decode(&f).is_ok());
    }

    #[test]
    fn every_framing_rejection_has_its_reason() {
        let f = frame();
        let n = f.len();
        assert_eq!(label(b""), "truncated");
        assert_eq!(label(b"#"), "truncated");
        assert_eq!(label(b"##01"), "truncated");
        assert_eq!(label(b"$$0001x1234\r\n"), "bad_header");
        assert_eq!(label(b"{\"ts\":1}"), "bad_header");
        assert_eq!(label(b"##01a4QN"), "bad_length");
        assert_eq!(label(b"##+123QN"), "bad_length");
        assert_eq!(label(b"##2000QN"), "oversized");
        assert_eq!(label(&f[..n - 1]), "truncated");
        assert_eq!(label(&f[..40]), "truncated");
        // Declared length one too long / one too short, frame otherwise complete.
        let mut longer = f.clone();
        longer[2..6].copy_from_slice(format!("{:04}", SEG.len() + 1).as_bytes());
        assert_eq!(label(&longer), "length_mismatch");
        let mut shorter = f.clone();
        shorter[2..6].copy_from_slice(format!("{:04}", SEG.len() - 1).as_bytes());
        assert_eq!(label(&shorter), "length_mismatch");
        let mut bad_crc = f.clone();
        bad_crc[n - 3] = if bad_crc[n - 3] == b'0' { b'1' } else { b'0' };
        assert_eq!(label(&bad_crc), "bad_crc");
        let mut not_hex = f.clone();
        not_hex[n - 3] = b'G';
        assert_eq!(label(&not_hex), "bad_crc");
        let mut flipped = f.clone();
        flipped[20] ^= 1;
        assert_eq!(label(&flipped), "bad_crc");
        let mut no_crlf = f.clone();
        no_crlf[n - 1] = b'x';
        assert_eq!(label(&no_crlf), "missing_crlf");
        let mut two = f.clone();
        two.extend_from_slice(&f);
        assert_eq!(label(&two), "trailing_bytes");
        let binary = "QN=1;ST=39;CN=2011;PW=1;MN=a\u{1};CP=&&&&";
        assert_eq!(label(&wrap_segment(binary).unwrap()), "bad_byte");
        let long = format!("{}{}", SEG, "x".repeat(MAX_SEGMENT_LEN));
        assert_eq!(wrap_segment(&long).unwrap_err().label(), "oversized");
        let mut long_frame = f[..6].to_vec();
        long_frame.extend_from_slice(long.as_bytes());
        long_frame.extend_from_slice(b"0000\r\n");
        assert_eq!(label(&long_frame), "oversized");
    }
}
