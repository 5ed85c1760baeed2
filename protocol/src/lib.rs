//! The dustwatch wire contract v1, shared by devices (sensors-sim) and the aggregator.
//!
//! One definition of topics, payloads and validation limits serves both sides, so a device and the
//! aggregator cannot disagree on the format. This crate knows nothing about servers or simulators.

pub mod command;
pub mod hj212;
pub mod payload;
pub mod registry;
pub mod topic;
pub mod validate;

pub use command::{CommandId, CommandReply, Envelope};
pub use hj212::{Hj212Error, PmUnit};
pub use payload::{
    CityLevel, Command, Event, EventKind, Flag, Level, Metric, Reading, Status, StatusState,
    MAX_STOP_WORK_S,
};
pub use registry::{DeviceInfo, Phase, Registry, SiteInfo, SiteKind};
pub use topic::{Topic, TopicError, TopicRoot};
pub use validate::{check_not_future, RejectReason, Rejected, MAX_PAYLOAD_BYTES, MAX_SEQ};
