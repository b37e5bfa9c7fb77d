//! SQLite's writer: the process's write turn, and the one connection its two busiest writers
//! (publishing and recording attempts) send whole transactions to.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a hand-over
//! to that thread and back: two thread wake-ups, with their system calls, whatever the
//! statement does. At low load that was most of a delivery's cost: an event alone took eleven
//! of them (a transaction's `BEGIN`, its statements and its `COMMIT`, to publish and again to
//! record). Here a transaction's statements travel as one text, which SQLite runs one after
//! the other on its thread: a batch of successes is one hand-over, and so is a publish when
//! the process has copies of its recipients (two when it must read their versions first:
//! the counters, then the rows with the commit).
//!
//! One connection for these writes also keeps its page cache: in WAL mode SQLite drops a
//! connection's cache whenever another connection has written.
//!
//! The writer does not checkpoint. SQLite's default has the connection that commits copy the
//! write-ahead log back into the database (and sync both) once the log passes 1,000 pages:
//! on the writer, that was about an eighth of its thread's time in the delivery bench, and a
//! disk sync in the middle of a publish. A [`checkpoint`] task does it on a connection of its
//! own, beside the writer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sea_orm::sqlx::{self, ConnectOptions, Connection};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, RuntimeErr, Statement, Values};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// How many texts the writer keeps prepared. Preparing a batch's text costs SQLite more than
/// running it, so a text that comes again is worth keeping; but batches under load vary in
/// size, and each kept text holds its program. Measured in the delivery bench (SQLite, (a)
/// and (b)): keeping none cost a fifth of the throughput; 16 kept most of it, at about 15 MiB
/// of peak memory; 100 (sqlx's default) gained 5% more in (a) for 40 MiB more.
const KEPT_TEXTS: usize = 16;

/// The process's write turn ([`super::Store::write_turn`]) and, on SQLite, the writer behind
/// it. One per process: every writer of the process must share it.
pub struct WriteGate {
    turn: Arc<Mutex<Writer>>,
    /// The [`checkpoint`] task was started (on SQLite, with the first turn taken).
    checkpointing: AtomicBool,
}

impl WriteGate {
    /// The gate of `db`'s writers; its SQLite connection is opened when first used.
    pub fn new(db: &DatabaseConnection) -> Self {
        let options = (db.get_database_backend() == DatabaseBackend::Sqlite).then(|| {
            let options = (*db.get_sqlite_connection_pool().connect_options()).clone();
            options.statement_cache_capacity(KEPT_TEXTS).pragma("wal_autocheckpoint", "0")
        });
        WriteGate {
            turn: Arc::new(Mutex::new(Writer { options, conn: None, open: false })),
            checkpointing: AtomicBool::new(false),
        }
    }

    /// Takes the turn. A transaction left open by a writer that never ended it (its task was
    /// dropped mid-way, as at shutdown) is rolled back first: it holds SQLite's write lock.
    pub(super) async fn take(&self) -> MutexGuard<'_, Writer> {
        let writer = take(&self.turn).await;
        if let Some(options) = &writer.options
            && !self.checkpointing.load(Ordering::Relaxed)
            && !self.checkpointing.swap(true, Ordering::Relaxed)
        {
            tokio::spawn(checkpoint(options.clone(), Arc::downgrade(&self.turn)));
        }
        writer
    }
}

/// The turn, with a transaction left open by a writer that never ended it rolled back.
async fn take(turn: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    let mut writer = turn.lock().await;
    if writer.open {
        writer.roll_back().await;
    }
    writer
}

/// How often the log is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Pages of log (4 KiB each) past which the log is made to start again from its beginning:
/// SQLite's own threshold for checkpointing.
pub(super) const LOG_PAGES_AT_MOST: i64 = 1_000;

/// Copies the write-ahead log back into the database, beside the writer, until the gate is
/// dropped. A passive checkpoint does not wait for the writer, and copies every page written
/// before it began. But the log starts again from its beginning only when a write begins
/// with the whole log copied, which a steady stream of writes never allows: it would grow
/// for as long as the stream lasts. So once the log passes [`LOG_PAGES_AT_MOST`], a second
/// checkpoint follows with the write turn held: it copies only the pages written during the
/// first (the writer waits that long), and the next write starts the log again.
async fn checkpoint(options: SqliteConnectOptions, turn: Weak<Mutex<Writer>>) {
    let mut conn: Option<SqliteConnection> = None;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let Some(turn) = turn.upgrade() else { return };
        if conn.is_none() {
            match options.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the checkpoint's connection to SQLite failed; trying again");
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("opened above");
        let log = match copy_log(c).await {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(error = %e, "checkpointing SQLite's write-ahead log failed");
                conn = None;
                continue;
            }
        };
        if log > LOG_PAGES_AT_MOST {
            let _writer = take(&turn).await;
            if let Err(e) = copy_log(c).await {
                tracing::warn!(error = %e, "checkpointing SQLite's write-ahead log failed");
                conn = None;
            }
        }
    }
}

/// A passive checkpoint; answers the log's length in pages when it began.
async fn copy_log(conn: &mut SqliteConnection) -> std::result::Result<i64, sqlx::Error> {
    let (_, log, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *conn).await?;
    Ok(log)
}

/// SQLite's writing connection; held with the write turn.
pub struct Writer {
    /// `None` on PostgreSQL.
    options: Option<SqliteConnectOptions>,
    conn: Option<SqliteConnection>,
    /// A transaction was begun and not yet ended.
    open: bool,
}

impl Writer {
    /// Begins a transaction with `first` as its first statement, in one hand-over, and answers
    /// `first`'s rows. The transaction stays open for [`Writer::commit_with`] or
    /// [`Writer::roll_back`]; on an error it is rolled back here.
    pub async fn begin_with(&mut self, first: Statement) -> Result<Vec<SqliteRow>> {
        let (sql, values) = join("BEGIN IMMEDIATE", std::iter::once(first), None)?;
        self.open = true;
        let conn = self.conn().await?;
        match query(sql, values).fetch_all(conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.roll_back().await;
                Err(failed(e))
            }
        }
    }

    /// Runs `statements` in the open transaction and commits it, in one hand-over. On an
    /// error nothing of the transaction is written.
    pub async fn commit_with(&mut self, statements: impl IntoIterator<Item = Statement>) -> Result<()> {
        let (sql, values) = join("", statements, Some("COMMIT"))?;
        self.run(sql, values).await.map(drop)
    }

    /// `statements` as one transaction, in one hand-over; answers the rows they return. On
    /// an error nothing of it is written.
    pub async fn transaction(
        &mut self,
        statements: impl IntoIterator<Item = Statement>,
    ) -> Result<Vec<SqliteRow>> {
        let (sql, values) = join("BEGIN IMMEDIATE", statements, Some("COMMIT"))?;
        self.open = true;
        self.run(sql, values).await
    }

    /// Ends the open transaction without writing it. A connection that cannot is closed
    /// (closing rolls back), and the next use opens another.
    pub async fn roll_back(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && let Err(e) = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await
            // SQLite may have ended the transaction itself on the error.
            && !e.as_database_error().is_some_and(|d| d.message().contains("no transaction is active"))
            && let Some(conn) = self.conn.take()
        {
            let _ = conn.close().await;
        }
        self.open = false;
    }

    /// Runs a text that ends its transaction; answers its rows.
    async fn run(&mut self, sql: String, values: Values) -> Result<Vec<SqliteRow>> {
        let conn = self.conn().await?;
        match query(sql, values).fetch_all(conn).await {
            Ok(rows) => {
                self.open = false;
                Ok(rows)
            }
            Err(e) => {
                self.roll_back().await;
                Err(failed(e))
            }
        }
    }

    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        if self.conn.is_none() {
            let options = self.options.as_ref().ok_or_else(|| custom("the writer is SQLite's"))?;
            self.conn = Some(options.connect().await.map_err(|e| Error::from(DbErr::Conn(runtime(e))))?);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }
}

fn query(
    sql: String,
    values: Values,
) -> sqlx::query::Query<'static, sqlx::Sqlite, sea_query_sqlx::SqlxValues> {
    sqlx::query_with(sqlx::AssertSqlSafe(sql), sea_query_sqlx::SqlxValues(values))
}

/// `opening; statements…; closing` as one text with their values in order. Each statement
/// must bind with plain `?` placeholders ([`super::statement`] makes them): SQLite numbers
/// those of each statement from 1, and sqlx hands each statement the values after the
/// previous one's.
fn join(
    opening: &str,
    statements: impl IntoIterator<Item = Statement>,
    closing: Option<&str>,
) -> Result<(String, Values)> {
    let mut sql = String::from(opening);
    let mut values = Vec::new();
    for statement in statements {
        if numbered(&statement.sql) {
            return Err(custom(&format!(
                "a statement of a joined transaction has numbered placeholders: {}",
                statement.sql
            )));
        }
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    if let Some(closing) = closing {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(closing);
    }
    Ok((sql, Values(values)))
}

/// Whether `sql` has a `$1` or `?1` placeholder outside quotes (they number from the start of
/// the whole text, not of their statement). Every joined text passes here, so it reads bytes:
/// the quotes and the placeholders' marks are ASCII, and no byte of a longer UTF-8 character is.
fn numbered(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'$' | b'?' | b':' | b'@') if bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                return true;
            }
            _ => {}
        }
    }
    false
}

fn runtime(e: sqlx::Error) -> RuntimeErr {
    RuntimeErr::SqlxError(std::sync::Arc::new(e))
}

/// A failed statement as every other store function answers it.
pub(crate) fn failed(e: sqlx::Error) -> Error {
    Error::from(DbErr::Exec(runtime(e)))
}

fn custom(message: &str) -> Error {
    Error::Db(DbErr::Custom(message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Value;

    fn stmt(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)
    }

    #[test]
    fn joins_statements_between_an_opening_and_a_closing() {
        let (sql, values) = join(
            "BEGIN IMMEDIATE",
            [
                stmt("INSERT INTO t VALUES (?, ?)", vec![1i64.into(), "a".into()]),
                stmt("DELETE FROM u", vec![]),
            ],
            Some("COMMIT"),
        )
        .expect("plain placeholders join");
        assert_eq!(sql, "BEGIN IMMEDIATE;\nINSERT INTO t VALUES (?, ?);\nDELETE FROM u;\nCOMMIT");
        assert_eq!(values.0, vec![Value::from(1i64), Value::from("a")]);
        let (sql, _) =
            join("", [stmt("UPDATE t SET a = ?", vec![2i64.into()])], Some("COMMIT")).expect("joins");
        assert_eq!(sql, "UPDATE t SET a = ?;\nCOMMIT");
    }

    #[test]
    fn refuses_numbered_placeholders_but_not_quoted_text() {
        for sql in ["SELECT $1", "SELECT ?2", "SELECT :name", "SELECT @a"] {
            assert!(join("", [stmt(sql, vec![])], None).is_err(), "{sql}");
        }
        assert!(!numbered("SELECT '$1', \"?2\", json_extract(a, '$.b') FROM t WHERE x = ?"));
        assert!(!numbered("SELECT 'é$1', \"ü?2\" FROM t WHERE x = ? AND y = 'ñ'"));
        assert!(numbered("SELECT 'é' FROM t WHERE x = ?1"));
    }
}
