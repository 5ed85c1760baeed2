//! The warning rules: the profile (`profile.rs`, read from its file by `profile/file.rs`), one
//! file per rule kind under `kinds/`, the per-site judgement in event time that feeds them
//! (`engine.rs`, with minute buckets in `minute.rs`, window arithmetic in `window.rs`, work
//! inferred in `activity.rs`, sprinkling runs in `sprinkling.rs`), the alert lifecycle
//! (`alerts.rs`), the city level timeline (`timeline.rs`) and levels entered late (`relevel.rs`),
//! the task that feeds the engine and persists/publishes (`task.rs`), and acknowledging an
//! alert on whichever instance judges it (`acks.rs`).

pub mod acks;
pub mod activity;
pub mod alert_ids;
pub mod alerts;
pub mod coverage;
pub mod engine;
pub mod error;
pub mod kinds;
pub mod minute;
pub mod owned;
pub mod profile;
pub mod rebuild;
pub mod relevel;
pub mod sprinkling;
pub mod task;
pub mod time_of_day;
pub mod timeline;
pub mod window;

pub use alerts::{Alert, AlertState, Change, RuleKind, Transition};
pub use coverage::{NotJudged, Reason};
pub use engine::{DayStats, Engine, Output, SiteHistory, Takeover};
pub use profile::{Profile, ProfileError, Severity};
pub use task::{RulesError, RulesHandle};
