//! HJ 212-2017, the protocol Chinese site monitors use to report to the authorities' platforms
//! (docs/domain.md, HJ 212).
//!
//! - `frame`: `##` + length + data segment + CRC + CRLF ([`decode`], [`encode`]).
//! - `segment`: the data segment fields ([`Frame`]); `cp`: the CP items ([`Cp`], [`FactorData`]).
//! - `codes`: CN, factor codes, CP field suffixes, reply codes; `num`: decimal values; `time`:
//!   DataTime and QN.
//! - `split`: PNUM/PNO packets ([`encode_packets`], [`Reassembler`]).
//! - `values`: frame → [`crate::Reading`], each value judged on its own ([`read_values`]);
//!   `reading`: reading → frame ([`from_reading`]) and device settings; `reply`: 9014, 9011 and
//!   9012 replies.
//!
//! Every rejection is an [`Hj212Error`] with a counter label; no input makes the decoder panic.
//! Only the envelope refuses a frame: an unknown factor or an unreadable item is kept as text
//! ([`Unread`]) and a bad value is left out by [`read_values`] with its [`DropReason`].

mod codes;
mod cp;
mod crc;
mod error;
mod frame;
mod num;
mod reading;
mod reply;
mod segment;
mod split;
mod time;
mod values;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

pub use codes::{factor_label, Cn, Factor, Field, QnRtn, FACTOR_LABELS};
pub use cp::{Cp, FactorData, Unread, UnreadWhy, PARAMS};
pub use crc::crc16;
pub use error::Hj212Error;
pub use frame::{
    decode, encode, unwrap_segment, wrap_segment, FRAME_OVERHEAD, MAX_FRAME_LEN, MAX_SEGMENT_LEN,
};
pub use num::Num;
pub use reading::{from_reading, DeviceProfile, PmUnit};
pub use reply::{data_reply, execution_result, request_reply, ST_SYSTEM};
pub use segment::{Frame, Packet, FLAG_REPLY, FLAG_SPLIT, FLAG_V2017, MAX_PACKETS};
pub use split::{encode_packets, Reassembler};
pub use time::{qn_from_unix_ms, DataTime, CHINA_UTC_OFFSET_MIN};
pub use values::{read_values, DropReason, Dropped, Values};
