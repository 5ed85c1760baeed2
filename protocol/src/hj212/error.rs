//! Why an HJ 212 frame was rejected: one variant per reason, each with a stable counter label and a
//! message a person can act on.

use thiserror::Error;

/// Longest piece of input quoted in an error message.
const QUOTE_MAX: usize = 40;

/// Quote a piece of input for an error message: at most 40 characters, non-printable bytes escaped.
pub(crate) fn quote(input: &[u8]) -> String {
    let cut = input.get(..QUOTE_MAX).unwrap_or(input);
    let mut s = cut.escape_ascii().to_string();
    if cut.len() < input.len() {
        s.push('…');
    }
    s
}

/// A rejected HJ 212 frame. `label()` is the counter label; `Display` says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Hj212Error {
    #[error("frame does not start with `##` (starts `{start}`); HJ 212 frames are `##` + 4-digit length + data segment + CRC + CRLF")]
    BadHeader { start: String },
    #[error("length field `{field}` is not 4 decimal digits")]
    BadLength { field: String },
    #[error("declared data segment length is {declared} bytes but the frame carries {actual}; the sender counts the length wrongly (it must count the data segment only)")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("frame truncated: {got} bytes received, {expected} needed (connection closed or frame cut mid-way)")]
    Truncated { expected: usize, got: usize },
    #[error("data segment of {len} bytes exceeds the 1024-byte limit; longer payloads must be split with PNUM/PNO")]
    Oversized { len: usize },
    #[error("CRC mismatch: frame says `{got}`, the data segment gives {computed:04X}; check that the device uses the HJ 212 CRC (not CRC-16/MODBUS) over the data segment only")]
    BadCrc { computed: u16, got: String },
    #[error("frame does not end with CRLF after the 4 CRC digits")]
    MissingCrlf,
    #[error("{extra} unexpected bytes after the frame's CRLF; send one frame per CRLF")]
    TrailingBytes { extra: usize },
    #[error("byte 0x{byte:02X} at offset {offset} of the data segment is not printable ASCII")]
    BadByte { offset: usize, byte: u8 },
    #[error("malformed data segment: {detail}")]
    Malformed { detail: String },
    #[error("required field `{field}` is missing from the data segment")]
    MissingField { field: &'static str },
    #[error("field `{field}` appears twice")]
    DuplicateField { field: String },
    #[error("unknown field `{field}`; HJ 212-2017 data segments carry QN, ST, CN, PW, MN, Flag, PNUM, PNO, CP and CP items code-Rtd/Min/Avg/Max/Flag")]
    UnknownField { field: String },
    #[error("field {field}=`{value}` is invalid: expected {expected}")]
    BadField {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "unknown command CN=`{cn}`; supported: 2011, 2051, 2061, 2031, 9014, 9011, 9012, 1062"
    )]
    UnknownCn { cn: String },
    #[error("value of `{key}` is `{value}`, not a decimal number (like 245.0 or -1.5)")]
    NonNumeric { key: String, value: String },
    #[error("DataTime `{value}` is not a valid yyyyMMddHHmmss time")]
    BadDataTime { value: String },
    #[error("CN={cn} carries no monitoring data (only 2011, 2051, 2061 and 2031 become readings)")]
    NotData { cn: u16 },
    #[error("packet {index} of {total} of a split frame: pass it through a Reassembler first")]
    SplitFragment { index: u16, total: u16 },
    #[error("packets of one split frame disagree: {detail}")]
    SplitMismatch { detail: String },
}

impl Hj212Error {
    /// Short stable label for counters (`hj212_rejected_total{reason="bad_crc"}`).
    pub fn label(&self) -> &'static str {
        match self {
            Hj212Error::BadHeader { .. } => "bad_header",
            Hj212Error::BadLength { .. } => "bad_length",
            Hj212Error::LengthMismatch { .. } => "length_mismatch",
            Hj212Error::Truncated { .. } => "truncated",
            Hj212Error::Oversized { .. } => "oversized",
            Hj212Error::BadCrc { .. } => "bad_crc",
            Hj212Error::MissingCrlf => "missing_crlf",
            Hj212Error::TrailingBytes { .. } => "trailing_bytes",
            Hj212Error::BadByte { .. } => "bad_byte",
            Hj212Error::Malformed { .. } => "malformed",
            Hj212Error::MissingField { .. } => "missing_field",
            Hj212Error::DuplicateField { .. } => "duplicate_field",
            Hj212Error::UnknownField { .. } => "unknown_field",
            Hj212Error::BadField { .. } => "bad_field",
            Hj212Error::UnknownCn { .. } => "unknown_cn",
            Hj212Error::NonNumeric { .. } => "non_numeric",
            Hj212Error::BadDataTime { .. } => "bad_datatime",
            Hj212Error::NotData { .. } => "not_data",
            Hj212Error::SplitFragment { .. } => "split_fragment",
            Hj212Error::SplitMismatch { .. } => "split_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_clips_and_escapes() {
        assert_eq!(quote(b"ab\x01"), "ab\\x01");
        let long = [b'x'; 100];
        assert_eq!(quote(&long).chars().count(), QUOTE_MAX + 1);
    }
}
