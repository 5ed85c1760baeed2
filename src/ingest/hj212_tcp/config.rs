//! Settings of the HJ 212 TCP listener (`[hj212]`).

use dustwatch_protocol::hj212::MAX_FRAME_LEN;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The HJ 212 TCP listener (`[hj212]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hj212Config {
    /// Listen address, e.g. `"0.0.0.0:9212"` (port 0 picks a free port). Default none: the
    /// listener is off.
    pub listen: Option<SocketAddr>,
    /// Connections open at once; a connection beyond that is closed as soon as it is accepted.
    /// Default 1024.
    pub max_connections: usize,
    /// Longest frame, in bytes from `##` to CRLF; at most the standard's 1036 (a 1024-byte data
    /// segment). Default 1036.
    pub max_frame_bytes: usize,
    /// A connection that sends nothing for this long is closed (half-open or silent). Devices
    /// send real-time data every 30-60 s. Default 600 s.
    pub idle_timeout_s: u64,
    /// A frame must be complete this long after its first byte (slow clients). Default 30 s.
    pub read_timeout_s: u64,
    /// A reply the device does not take within this closes the connection. Default 10 s.
    pub write_timeout_s: u64,
    /// Frames of one connection waiting for their commit before reading pauses. Default 64.
    pub max_inflight: usize,
    /// Incomplete split frames one connection may have pending. Default 8.
    pub max_pending_splits: usize,
    /// Bad frames in a row after which a connection is closed (garbage senders). Default 16.
    pub max_bad_frames: u32,
    /// Connections open at once from one IP address (beside `max_connections`), so one client
    /// cannot take every slot. Default 32.
    pub max_connections_per_addr: usize,
    /// A connection must send a frame with a known MN and the right PW within this long of
    /// connecting, or it is closed (a device that connects early and stays silent reconnects);
    /// after that `idle_timeout_s` applies. Default 30 s.
    pub first_frame_timeout_s: u64,
    /// The refusal of a frame with an unknown MN or a wrong PW is sent after this delay, doubled
    /// for each further failure of its MN or address (up to `auth_delay_max_ms`); the
    /// connection reads nothing meanwhile. Default 500 ms.
    pub auth_delay_ms: u64,
    /// Longest such delay. Default 8000 ms.
    pub auth_delay_max_ms: u64,
    /// Every this many failures of one MN or one address lock it out: its frames are refused
    /// (the same reply, right PW or not) for `lockout_s`, doubled at each further lockout up to
    /// `lockout_max_s`. An address that logged in with that MN before is not held by the MN's
    /// lockout. Default 5.
    pub lockout_after: u32,
    /// First lockout. Default 60 s.
    pub lockout_s: u64,
    /// Longest lockout. Default 3600 s.
    pub lockout_max_s: u64,
    /// Failures of an MN or address are forgotten this long after its last one (once no lockout
    /// runs). Default 3600 s.
    pub failure_memory_s: u64,
    /// MNs and addresses tracked for failures at most (memory bound); beyond it the entry with
    /// the fewest failures is dropped. Default 10000.
    pub max_tracked: usize,
    /// Dead letters kept for refused MN/PW frames per minute, all devices together (every one is
    /// counted in `/metrics` either way). Default 60.
    pub auth_dead_letters_per_min: u32,
    /// Upstream platforms every stored reading is forwarded to (`[[hj212.forward]]`). Default
    /// none.
    pub forward: Vec<crate::hj212_forward::ForwardConfig>,
}

impl Default for Hj212Config {
    fn default() -> Self {
        Hj212Config {
            listen: None,
            max_connections: 1024,
            max_frame_bytes: MAX_FRAME_LEN,
            idle_timeout_s: 600,
            read_timeout_s: 30,
            write_timeout_s: 10,
            max_inflight: 64,
            max_pending_splits: 8,
            max_bad_frames: 16,
            max_connections_per_addr: 32,
            first_frame_timeout_s: 30,
            auth_delay_ms: 500,
            auth_delay_max_ms: 8_000,
            lockout_after: 5,
            lockout_s: 60,
            lockout_max_s: 3_600,
            failure_memory_s: 3_600,
            max_tracked: 10_000,
            auth_dead_letters_per_min: 60,
            forward: Vec::new(),
        }
    }
}
