//! Where new alert ids come from. One instance alone counts up from the highest stored id;
//! several instances writing one PostgreSQL database draw ids from the database instead, so two
//! engines never hand out the same id.

/// Hands out ids for new alerts; `None` when it cannot (the caller then counts on locally).
pub trait AlertIds: Send {
    fn next_id(&mut self) -> Option<i64>;
}

/// The book's id source: none (count locally) or a shared one.
#[derive(Default)]
pub struct IdSource(Option<Box<dyn AlertIds>>);

impl IdSource {
    pub fn shared(ids: Box<dyn AlertIds>) -> IdSource {
        IdSource(Some(ids))
    }

    /// The next id from the shared source, if there is one and it answers.
    pub fn next_id(&mut self) -> Option<i64> {
        self.0.as_mut().and_then(|ids| ids.next_id())
    }
}

impl std::fmt::Debug for IdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "IdSource(shared)"
        } else {
            "IdSource(local)"
        })
    }
}
