//! Storage, one module per table family. The delivery engine's: [`events`] (publish's
//! counters, events and deliveries), [`queue`] (claiming due deliveries, giving them back,
//! loading what their attempts need), [`attempts`] (recording attempts, settling deliveries,
//! the hourly counters and webhook health), [`ordering`] (a key one delivery at a time),
//! [`webhooks`] (turning a webhook off). The services' own: [`deliveries`] (the log's reads),
//! [`explain`], [`overview`] (the admin overview's counters and rollups), [`alerts`],
//! [`listeners`], [`portal`], [`tenants`], [`retention`], [`maintenance`], [`replays`]. The
//! SQL is written here and nowhere in the server; the statements' shapes and batching are the
//! measured ones (BENCHMARKS.md), so change them only with a measurement.
//!
//! Also the one placeholder builder of multi-row statements, and [`statement`], which hands
//! them to SQLite in the form it binds cheaply.

pub mod alerts;
pub mod attempts;
pub mod deliveries;
pub mod events;
pub mod explain;
pub mod listeners;
pub mod maintenance;
pub mod ordering;
pub mod overview;
pub mod portal;
pub mod queue;
pub mod replays;
pub mod retention;
pub mod tenants;
pub mod webhooks;
mod writer;

pub(crate) use writer::failed as sqlx_failed;
pub use writer::{Row, WriteGate, Writer};

#[cfg(test)]
mod database_tests;

use std::fmt::Write;

use crate::error::Result;
use sea_orm::{DatabaseBackend, DatabaseConnection, Statement, Value};
use tokio::sync::MutexGuard;

/// The database as the delivery engine writes it: the connection and, on SQLite, the one
/// write turn that every busy writer of the process shares ([`crate::Services::write_turn`]).
/// Cheap to make: two references.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    db: &'a DatabaseConnection,
    write_gate: &'a WriteGate,
}

impl<'a> Store<'a> {
    /// A store over `db`; `write_gate` must be the gate every other writer of the process
    /// takes (the services' own), or SQLite writers meet in its sleeping busy handler.
    pub fn new(db: &'a DatabaseConnection, write_gate: &'a WriteGate) -> Self {
        Store { db, write_gate }
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// `(in use, idle, max)` connections of the pool, as the pool counts them in memory (no
    /// query: a metrics scrape reads it while the database is away).
    pub fn pool_usage(&self) -> Option<(u32, u32, u32)> {
        let (size, idle, max) = match self.backend() {
            DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            DatabaseBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => return None,
        };
        // Read one after the other, so a connection may change state in between.
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        Some((size - idle, idle, max))
    }

    /// On SQLite, the process's write turn: held across a transaction. It comes with the
    /// [`Writer`], for whole transactions in one hand-over. PostgreSQL has row locks and
    /// needs none.
    pub async fn write_turn(&self) -> Option<MutexGuard<'a, Writer>> {
        match self.backend() {
            DatabaseBackend::Sqlite => Some(self.write_gate.take().await),
            _ => None,
        }
    }
}

/// A statement of `$1 … $n` placeholders for `backend`. On SQLite they become plain `?` when
/// each appears once and in order (what [`placeholders`] builds): SQLite finds a numbered or
/// named placeholder by walking the list of the statement's names, when it prepares the
/// statement and again for each value bound, so a statement with n of them costs n² (a
/// batch of attempts has hundreds). A plain `?` takes the next number and is in no list.
/// Any other text is left as it is.
pub(crate) fn statement(backend: DatabaseBackend, sql: String, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Sqlite => positional(&sql).unwrap_or(sql),
        _ => sql,
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs a PostgreSQL statement as the unnamed prepared statement: planned for each execution,
/// with its values, never kept. A
/// prepared statement's generic plan is kept per connection until the table's statistics next
/// change: one made while `deliveries` held a few rows reads the whole table (a sequential
/// scan) for as long as it is kept, even at tens of thousands of rows (seen in the delivery
/// bench, issue 16). This costs one more round trip (the statement's description) per
/// execution. Answers the text of the first column of each row the statement returns.
pub(crate) async fn query_planned_each_time(
    db: &DatabaseConnection,
    query: sea_orm::sqlx::query::Query<'_, sea_orm::sqlx::Postgres, sea_orm::sqlx::postgres::PgArguments>,
) -> Result<Vec<String>> {
    let rows =
        query.persistent(false).fetch_all(db.get_postgres_connection_pool()).await.map_err(sqlx_failed)?;
    rows.iter().map(|row| sea_orm::sqlx::Row::try_get::<String, _>(row, 0).map_err(sqlx_failed)).collect()
}

/// `sql` with `$1 … $n` as `?`, or `None` unless they appear once each, in order, outside
/// quotes.
fn positional(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1usize;
    let mut quote: Option<char> = None;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') => {
                let mut number = 0usize;
                let mut digits = 0;
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    number = number.checked_mul(10)?.checked_add(d.to_digit(10)? as usize)?;
                    digits += 1;
                    chars.next();
                }
                if digits == 0 || number != expected {
                    return None;
                }
                expected += 1;
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Some(out)
}

/// `($1, $2), ($3, $4)`: `rows` groups of `cols` placeholders, numbered from `offset + 1`.
pub(crate) fn placeholders(rows: usize, cols: usize, offset: usize) -> String {
    build_placeholders(rows, cols, offset, None, true)
}

/// [`placeholders`] with each one cast to its column's type, `(CAST($1 AS TEXT), …)`: a
/// `VALUES` list that a statement reads as a table needs its types spelled out on PostgreSQL.
pub(crate) fn typed_placeholders(rows: usize, types: &[&str], offset: usize) -> String {
    build_placeholders(rows, types.len(), offset, Some(types), true)
}

/// `$3, $4, $5`: `n` placeholders for an `IN (…)` list, numbered from `offset + 1`.
pub(crate) fn placeholder_list(n: usize, offset: usize) -> String {
    build_placeholders(n, 1, offset, None, false)
}

/// The one placeholder builder: one string, no allocation per cell (a batch of 256 attempts
/// has over 3,000 placeholders).
fn build_placeholders(
    rows: usize,
    cols: usize,
    offset: usize,
    types: Option<&[&str]>,
    grouped: bool,
) -> String {
    let per_cell = if types.is_some() { 20 } else { 6 };
    let mut out = String::with_capacity(rows * cols * per_cell);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        if grouped {
            out.push('(');
        }
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            let n = offset + r * cols + c + 1;
            // Writing to a String cannot fail.
            let _ = match types {
                Some(types) => write!(out, "CAST(${n} AS {})", types[c]),
                None => write!(out, "${n}"),
            };
        }
        if grouped {
            out.push(')');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_plain_placeholders_when_they_come_in_order() {
        let sql = format!("INSERT INTO t (a, b) VALUES {} ON CONFLICT DO NOTHING", placeholders(2, 2, 0));
        let stmt = statement(DatabaseBackend::Sqlite, sql.clone(), Vec::new());
        assert_eq!(stmt.sql, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING");
        assert_eq!(statement(DatabaseBackend::Postgres, sql.clone(), Vec::new()).sql, sql);
        assert_eq!(
            positional("SELECT '$2', \"$x\" FROM t WHERE a = $1 AND b = $2").as_deref(),
            Some("SELECT '$2', \"$x\" FROM t WHERE a = ? AND b = ?"),
            "quoted text is not a placeholder"
        );
        assert_eq!(positional("SELECT 1 WHERE a = $10").as_deref(), None, "must start at $1");
    }

    #[test]
    fn sqlite_keeps_numbers_that_repeat_or_come_out_of_order() {
        for sql in ["SELECT $1, $1", "SELECT $2, $1", "SELECT $1, $3", "SELECT $ FROM t"] {
            let stmt = statement(DatabaseBackend::Sqlite, sql.to_string(), Vec::new());
            assert_eq!(stmt.sql, sql);
        }
    }

    #[test]
    fn placeholders_number_rows_after_the_offset() {
        assert_eq!(placeholders(2, 2, 0), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(1, 3, 4), "($5, $6, $7)");
        assert_eq!(placeholders(0, 3, 0), "");
    }

    #[test]
    fn placeholder_lists_have_no_groups() {
        assert_eq!(placeholder_list(3, 2), "$3, $4, $5");
        assert_eq!(placeholder_list(0, 2), "");
    }

    #[test]
    fn typed_placeholders_cast_each_column() {
        assert_eq!(
            typed_placeholders(2, &["TEXT", "BIGINT"], 1),
            "(CAST($2 AS TEXT), CAST($3 AS BIGINT)), (CAST($4 AS TEXT), CAST($5 AS BIGINT))"
        );
    }
}
