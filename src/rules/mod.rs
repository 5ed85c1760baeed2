//! The warning rules: profiles (`profile.rs`), per-site judgement in event time (`engine.rs` with
//! `window.rs` and `minute.rs`), the alert lifecycle (`alerts.rs`), the city level timeline
//! (`timeline.rs`) and levels entered late (`relevel.rs`), and the task that feeds the engine and persists/publishes (`task.rs`).

pub mod alert_ids;
pub mod alerts;
pub mod coverage;
pub mod engine;
pub mod minute;
pub mod owned;
pub mod profile;
pub mod rebuild;
pub mod relevel;
pub mod sprinkling;
pub mod task;
pub mod timeline;
pub mod window;

pub use alerts::{Alert, AlertState, Change, RuleKind, Transition};
pub use coverage::{NotJudged, Reason};
pub use engine::{DayStats, Engine, Output, SiteHistory, Takeover};
pub use profile::{Profile, ProfileError, Severity};
pub use task::{RulesError, RulesHandle};
