//! Keep-alive bookkeeping without I/O (the model is rumqttc's `state.rs`): the owner ticks it
//! every half keep-alive, says whether anything went out since the last tick, and tells it when
//! anything came in; it answers whether to send a PINGREQ or give the broker up.

/// What a keep-alive tick asks of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Something went out since the last tick: the broker heard from us.
    Idle,
    /// Nothing went out: send a PINGREQ so the broker hears from us once per keep-alive.
    Ping,
    /// Nothing came in for `patience` ticks after a PINGREQ: the broker (or the path to it) is
    /// gone.
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct KeepAlive {
    patience: u32,
    /// Ticks since the first PINGREQ that nothing answered yet.
    since_ping: Option<u32>,
}

impl KeepAlive {
    /// Give up after `patience` ticks (half keep-alives) of silence after a PINGREQ: a device
    /// gives up at the next tick (1), the aggregator, busy draining a backlog, after two
    /// keep-alives (4).
    pub fn new(patience: u32) -> KeepAlive {
        KeepAlive {
            patience: patience.max(1),
            since_ping: None,
        }
    }

    /// Something came in from the broker (any packet answers a PINGREQ).
    pub fn heard(&mut self) {
        self.since_ping = None;
    }

    /// A tick; `sent` says whether anything went out since the last one.
    pub fn tick(&mut self, sent: bool) -> Tick {
        if let Some(n) = self.since_ping.as_mut() {
            *n += 1;
            if *n >= self.patience {
                return Tick::TimedOut;
            }
        }
        if sent {
            return Tick::Idle;
        }
        self.since_ping.get_or_insert(0);
        Tick::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_when_idle() {
        let mut k = KeepAlive::new(1);
        assert_eq!(k.tick(true), Tick::Idle);
        assert_eq!(k.tick(true), Tick::Idle);
        assert_eq!(k.tick(false), Tick::Ping);
        k.heard();
        assert_eq!(k.tick(true), Tick::Idle);
    }

    #[test]
    fn a_device_gives_up_one_tick_after_an_unanswered_ping() {
        let mut k = KeepAlive::new(1);
        assert_eq!(k.tick(false), Tick::Ping);
        assert_eq!(k.tick(true), Tick::TimedOut);
    }

    #[test]
    fn the_aggregator_waits_two_keep_alives() {
        let mut k = KeepAlive::new(4);
        assert_eq!(k.tick(false), Tick::Ping);
        for _ in 0..3 {
            assert_eq!(k.tick(false), Tick::Ping);
        }
        assert_eq!(k.tick(false), Tick::TimedOut);
        // Heard in time: the count starts again.
        let mut k = KeepAlive::new(4);
        for _ in 0..3 {
            k.tick(false);
        }
        k.heard();
        for _ in 0..4 {
            assert_ne!(k.tick(false), Tick::TimedOut);
        }
    }
}
