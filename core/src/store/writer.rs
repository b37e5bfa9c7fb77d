//! SQLite's writer: the process's write turn, and the one connection its two busiest writers
//! (publishing and recording attempts) send whole transactions to.
//!
//! The connection lives on a thread of its own, as sqlx's do, so every exchange with it is a
//! hand-over to that thread and back: two thread wake-ups, with their system calls, whatever
//! the statements do. A transaction's statements travel together, and the thread answers once,
//! when the last has run: a batch of successes is one hand-over, and so is a publish when the
//! process has copies of its recipients (two when it must read their versions first: the
//! counters, then the rows with the commit). Through sqlx the same transaction was one text
//! whose statements each sent an answer of their own, so the waiting task woke about twice per
//! hand-over; and sqlx keeps prepared statements by the whole text, so each size of batch held
//! a program of its own for every statement in it (BENCHMARKS.md, Change 15). Here each
//! statement is kept by its own text: a multi-row statement's text is fixed by its number of
//! rows, so a full chunk's serves every batch.
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

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sea_orm::sqlx::{self, ConnectOptions};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, RuntimeErr, Statement};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

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
        let options = (db.get_database_backend() == DatabaseBackend::Sqlite)
            .then(|| (*db.get_sqlite_connection_pool().connect_options()).clone());
        WriteGate {
            turn: Arc::new(Mutex::new(Writer { options, thread: None, open: false })),
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
    /// The connection's thread, started when first used.
    thread: Option<Thread>,
    /// A transaction was begun and not yet ended.
    open: bool,
}

/// A row a writer's statement answered, its columns in the statement's order.
pub type Row = Vec<rusqlite::types::Value>;

impl Writer {
    /// Begins a transaction with `first` as its first statement, in one hand-over, and answers
    /// `first`'s rows. The transaction stays open for [`Writer::commit_with`] or
    /// [`Writer::roll_back`]; on an error it is rolled back here.
    pub async fn begin_with(&mut self, first: Statement) -> Result<Vec<Row>> {
        self.open = true;
        self.run(Some(BEGIN), vec![first], None).await
    }

    /// Runs `statements` in the open transaction and commits it, in one hand-over. On an
    /// error nothing of the transaction is written.
    pub async fn commit_with(&mut self, statements: impl IntoIterator<Item = Statement>) -> Result<()> {
        self.run(None, statements.into_iter().collect(), Some(COMMIT)).await.map(drop)
    }

    /// `statements` as one transaction, in one hand-over; answers the rows they return. On
    /// an error nothing of it is written.
    pub async fn transaction(&mut self, statements: impl IntoIterator<Item = Statement>) -> Result<Vec<Row>> {
        self.open = true;
        self.run(Some(BEGIN), statements.into_iter().collect(), Some(COMMIT)).await
    }

    /// Ends the open transaction without writing it. A connection that cannot is closed
    /// (closing rolls back), and the next use opens another.
    pub async fn roll_back(&mut self) {
        if let Some(thread) = self.thread.as_ref()
            && let Err(e) = thread.send(Some(ROLLBACK), Vec::new(), None).await
            // SQLite may have ended the transaction itself on the error.
            && !e.to_string().contains("no transaction is active")
        {
            self.thread = None;
        }
        self.open = false;
    }

    /// Runs `opening`, `statements` and `closing` in one hand-over; answers the statements'
    /// rows. On an error the transaction is rolled back.
    async fn run(
        &mut self,
        opening: Option<&'static str>,
        statements: Vec<Statement>,
        closing: Option<&'static str>,
    ) -> Result<Vec<Row>> {
        let answer = match self.thread() {
            Ok(thread) => thread.send(opening, statements, closing).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(rows) => {
                if closing.is_some() {
                    self.open = false;
                }
                Ok(rows)
            }
            Err(e) => {
                self.roll_back().await;
                Err(e)
            }
        }
    }

    fn thread(&mut self) -> Result<&Thread> {
        if self.thread.is_none() {
            let options = self.options.as_ref().ok_or_else(|| custom("the writer is SQLite's"))?;
            self.thread = Some(Thread::start(options)?);
        }
        Ok(self.thread.as_ref().expect("started above"))
    }
}

const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// How many statements the writer keeps prepared. Each multi-row statement's text is fixed by
/// its number of rows, so a full chunk's comes again in every batch and a short one's in
/// batches of the same remainder. Measured in the delivery bench (SQLite, back to back,
/// BENCHMARKS.md Change 15): 96 gave a third more throughput in (a) and (b) than 16 or 32, for
/// 2-5 MiB more at (a)'s peak than sqlx's writer (about 2 of them the program's code).
const KEPT_STATEMENTS: usize = 96;

/// A writer's work for the connection's thread, and where its answer goes.
struct Job {
    opening: Option<&'static str>,
    statements: Vec<Statement>,
    closing: Option<&'static str>,
    answer: tokio::sync::oneshot::Sender<rusqlite::Result<Vec<Row>>>,
}

/// The writer connection's thread: it runs each [`Job`] whole, then answers once.
struct Thread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Thread {
    fn start(options: &SqliteConnectOptions) -> Result<Thread> {
        let conn = open(options).map_err(|e| Error::from(DbErr::Conn(sqlite_runtime(e))))?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let answer = run_job(&conn, job.opening, job.statements, job.closing);
                    let _ = job.answer.send(answer);
                }
            })
            .map_err(|e| custom(&format!("starting SQLite's writer thread: {e}")))?;
        Ok(Thread { jobs })
    }

    async fn send(
        &self,
        opening: Option<&'static str>,
        statements: Vec<Statement>,
        closing: Option<&'static str>,
    ) -> Result<Vec<Row>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { opening, statements, closing, answer }).map_err(|_| ended())?;
        match answered.await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(Error::from(DbErr::Exec(sqlite_runtime(e)))),
            Err(_) => Err(ended()),
        }
    }
}

/// The writer's connection, set as the pool's are ([`crate::db::connect`]), without the
/// automatic checkpoint ([`checkpoint`] does it).
fn open(options: &SqliteConnectOptions) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // `sqlite::memory:` is one database in memory that sqlx's connections share by a name of
    // its making and a shared cache: the writer must open it so too, or it would open a file
    // of that name. (sqlx cannot write that name back as a URL, so it is read as a path.)
    let filename = options.get_filename();
    if filename.to_string_lossy().starts_with("file:sqlx-in-memory-") {
        flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
    }
    let conn = rusqlite::Connection::open_with_flags(filename, flags)?;
    conn.busy_timeout(crate::db::SQLITE_BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(KEPT_STATEMENTS);
    Ok(conn)
}

/// Runs one job on the writer's connection; answers its statements' rows.
fn run_job(
    conn: &rusqlite::Connection,
    opening: Option<&str>,
    statements: Vec<Statement>,
    closing: Option<&str>,
) -> rusqlite::Result<Vec<Row>> {
    let mut rows = Vec::new();
    if let Some(opening) = opening {
        conn.prepare_cached(opening)?.raw_execute()?;
    }
    for statement in statements {
        let mut prepared = conn.prepare_cached(&statement.sql)?;
        let values = statement.values.map(|v| v.0).unwrap_or_default();
        // Values go to the placeholders in order: a numbered or named one would take its
        // value by its number or name instead, so they are refused ([`super::statement`]
        // makes plain ones), and so is a count that does not match (SQLite would bind NULL).
        let count = prepared.parameter_count();
        if count != values.len() || (1..=count).any(|i| prepared.parameter_name(i).is_some()) {
            return Err(rusqlite::Error::InvalidParameterCount(values.len(), count));
        }
        for (i, value) in values.into_iter().enumerate() {
            prepared.raw_bind_parameter(i + 1, sqlite_value(value)?)?;
        }
        let columns = prepared.column_count();
        let mut answered = prepared.raw_query();
        while let Some(row) = answered.next()? {
            rows.push(
                (0..columns)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i))
                    .collect::<rusqlite::Result<Row>>()?,
            );
        }
    }
    if let Some(closing) = closing {
        conn.prepare_cached(closing)?.raw_execute()?;
    }
    Ok(rows)
}

/// A value of sea-orm's as SQLite stores it (as sea-query's binding for sqlx does). Written
/// here because sea-query's binder for rusqlite (`sea-query-rusqlite` 0.8) needs rusqlite 0.38,
/// whose `libsqlite3-sys` cannot sit in one program beside the one sqlx links.
fn sqlite_value(value: sea_orm::Value) -> rusqlite::Result<rusqlite::types::Value> {
    use rusqlite::types::Value as S;
    use sea_orm::Value as V;
    let int = |i: Option<i64>| i.map_or(S::Null, S::Integer);
    Ok(match value {
        V::Bool(b) => int(b.map(i64::from)),
        V::TinyInt(i) => int(i.map(i64::from)),
        V::SmallInt(i) => int(i.map(i64::from)),
        V::Int(i) => int(i.map(i64::from)),
        V::BigInt(i) => int(i),
        V::TinyUnsigned(i) => int(i.map(i64::from)),
        V::SmallUnsigned(i) => int(i.map(i64::from)),
        V::Unsigned(i) => int(i.map(i64::from)),
        V::BigUnsigned(i) => match i {
            Some(i) => S::Integer(
                i64::try_from(i).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            ),
            None => S::Null,
        },
        V::Float(f) => f.map_or(S::Null, |f| S::Real(f64::from(f))),
        V::Double(f) => f.map_or(S::Null, S::Real),
        V::String(s) => s.map_or(S::Null, S::Text),
        V::Char(c) => c.map_or(S::Null, |c| S::Text(c.to_string())),
        V::Bytes(b) => b.map_or(S::Null, S::Blob),
        V::Enum(e) => match e {
            sea_orm::sea_query::OptionEnum::Some(v) => S::Text(v.value.into_owned()),
            sea_orm::sea_query::OptionEnum::None(_) => S::Null,
        },
        V::Json(j) => j.map_or(S::Null, |j| S::Text(j.to_string())),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("the writer cannot bind {other:?}").into(),
            ));
        }
    })
}

/// The writer's thread is gone (it panicked): like a connection lost, the write may be tried
/// again, and the next turn starts another.
fn ended() -> Error {
    Error::from(DbErr::Conn(RuntimeErr::Internal("SQLite's writer thread ended".into())))
}

fn sqlite_runtime(e: rusqlite::Error) -> RuntimeErr {
    RuntimeErr::Internal(e.to_string())
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
    use rusqlite::types::Value as S;
    use sea_orm::Value as V;

    #[test]
    fn values_are_bound_as_sqlx_bound_them() {
        let cases = [
            (V::Bool(Some(true)), S::Integer(1)),
            (V::Int(Some(-7)), S::Integer(-7)),
            (V::BigInt(Some(1 << 40)), S::Integer(1 << 40)),
            (V::BigInt(None), S::Null),
            (V::Double(Some(0.5)), S::Real(0.5)),
            (V::String(Some("é".into())), S::Text("é".into())),
            (V::String(None), S::Null),
            (V::Bytes(Some(vec![0, 1])), S::Blob(vec![0, 1])),
        ];
        for (value, expected) in cases {
            assert_eq!(sqlite_value(value.clone()).unwrap(), expected, "{value:?}");
        }
        assert!(sqlite_value(V::BigUnsigned(Some(u64::MAX))).is_err(), "past i64 is refused, not wrapped");
    }

    /// Values are bound in order to plain placeholders only: a numbered one, or a count that
    /// does not match, is an error before anything is run, never a value in the wrong column.
    #[test]
    fn refuses_numbered_placeholders_and_miscounted_values() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a, b)").unwrap();
        let run = |sql: &str, values: Vec<V>| {
            run_job(
                &conn,
                None,
                vec![Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)],
                None,
            )
        };
        assert!(run("INSERT INTO t VALUES ($2, $1)", vec![1i64.into(), 2i64.into()]).is_err());
        assert!(run("INSERT INTO t VALUES (?1, ?1)", vec![1i64.into()]).is_err());
        assert!(run("INSERT INTO t VALUES (?, ?)", vec![1i64.into()]).is_err());
        assert!(run("INSERT INTO t VALUES (?, ?)", vec![1i64.into(), 2i64.into(), 3i64.into()]).is_err());
        assert!(run("SELECT 'a?1', \"$2\" FROM t WHERE a = ?", vec![1i64.into()]).is_ok());
        run("INSERT INTO t VALUES (?, ?)", vec![1i64.into(), "b".into()]).unwrap();
        let rows = run("SELECT a, b FROM t", vec![]).unwrap();
        assert_eq!(rows, vec![vec![S::Integer(1), S::Text("b".into())]]);
    }

    /// The writer opens the database the pool has, even one that lives only in memory (by a
    /// shared name): a write through it is read through the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_reach_the_pools_database_in_memory_too() {
        use sea_orm::ConnectionTrait;
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (a INTEGER, b TEXT)").await.unwrap();
        let gate = WriteGate::new(&db);
        let mut writer = gate.take().await;
        let rows = writer
            .transaction([Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) RETURNING a, b",
                [1i64.into(), "x".into(), 2i64.into(), "y".into()],
            )])
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![S::Integer(1), S::Text("x".into())], vec![S::Integer(2), S::Text("y".into())]]
        );
        drop(writer);
        let read = db
            .query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, "SELECT count(*) AS n FROM t"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.try_get::<i64>("", "n").unwrap(), 2);
    }

    /// A statement that fails leaves nothing of its transaction, and the next one is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_rolls_back_the_whole_transaction() {
        use sea_orm::ConnectionTrait;
        let file = std::env::temp_dir().join(format!("hookline-writer-{}.db", uuid::Uuid::new_v4().simple()));
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (a INTEGER NOT NULL)").await.unwrap();
        let gate = WriteGate::new(&db);
        let insert = |sql: &str| Statement::from_string(DatabaseBackend::Sqlite, sql);
        let mut writer = gate.take().await;
        let refused = writer
            .transaction([insert("INSERT INTO t VALUES (1)"), insert("INSERT INTO t VALUES (NULL)")])
            .await
            .expect_err("NOT NULL refuses the second row");
        assert!(refused.to_string().contains("NOT NULL"), "{refused}");
        writer.transaction([insert("INSERT INTO t VALUES (2)")]).await.expect("the writer writes again");
        drop(writer);
        let read = db
            .query_all_raw(Statement::from_string(DatabaseBackend::Sqlite, "SELECT a FROM t"))
            .await
            .unwrap();
        let values: Vec<i64> = read.iter().map(|r| r.try_get("", "a").unwrap()).collect();
        assert_eq!(values, vec![2]);
        drop(db);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
}
