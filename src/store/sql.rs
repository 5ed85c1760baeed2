//! What SQLite and PostgreSQL share of SQL, so a statement and a row's mapping to a type are
//! written once: statements are written with PostgreSQL's `$n` placeholders ([`sqlite`] turns
//! them into SQLite's `?n`), and rows are read through [`AnyRow`] on either backend.

/// A column type both drivers read.
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>
{
}

impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Column for T {}

/// A result row of either backend.
pub(crate) trait AnyRow {
    type Error;
    /// Column `i` (0-based), or the driver's error when it does not read as `T`.
    fn col<T: Column>(&self, i: usize) -> Result<T, Self::Error>;
}

impl AnyRow for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn col<T: Column>(&self, i: usize) -> Result<T, rusqlite::Error> {
        self.get(i)
    }
}

impl AnyRow for postgres::Row {
    type Error = postgres::Error;
    fn col<T: Column>(&self, i: usize) -> Result<T, postgres::Error> {
        self.try_get(i)
    }
}

/// A shared statement for SQLite: each `$n` placeholder becomes `?n` (both number the
/// parameters the same way). The shared statements hold no other `$`.
pub(crate) fn sqlite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let placeholder = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if placeholder { '?' } else { c });
    }
    out
}

/// A count column as `u32` (PostgreSQL has no unsigned type; a negative count reads as 0).
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::sqlite;

    #[test]
    fn placeholders_become_sqlite_ones_and_nothing_else_changes() {
        assert_eq!(
            sqlite("UPDATE t SET a = $2, b = $10 WHERE id = $1 AND c = 'x'"),
            "UPDATE t SET a = ?2, b = ?10 WHERE id = ?1 AND c = 'x'"
        );
        assert_eq!(sqlite("SELECT 1"), "SELECT 1");
    }
}
