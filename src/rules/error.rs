//! What the rules task's callers can be told went wrong.

use crate::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RulesError {
    #[error("no open alert with id {0}")]
    NoSuchAlert(i64),
    #[error("the rules engine has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}
