//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connections a PostgreSQL pool opens at most unless told otherwise
/// (`HOOKLINE_DATABASE_POOL_SIZE`): tuned for 2 cores, where more connections only queue for
/// the CPU.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// The same for SQLite, whose busiest writers have a connection of their own besides the pool
/// ([`crate::store::WriteGate`]): the pool serves reads and the other writers. With 4 the
/// delivery bench ran 5–10% faster than with 8 and its peak memory fell by 5–15 MiB (each
/// connection is a thread with its own page cache and allocator heap).
pub const DEFAULT_SQLITE_POOL_SIZE: u32 = 4;

/// The default pool size for the database at `url`.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") { DEFAULT_SQLITE_POOL_SIZE } else { DEFAULT_POOL_SIZE }
}

/// How long a SQLite connection waits for another process's lock before its statement fails:
/// the pool's connections and SQLite's writer (`store::writer`) alike.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a PostgreSQL connection may sit idle in the pool before it is pinged on its way
/// out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);

/// Connects to `sqlite://...` or `postgres://...` with the default pool size.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with_pool_size(url, default_pool_size(url)).await
}

/// Connects with a pool of at most `pool_size` connections. SQLite runs in WAL mode with a
/// pool of connections, so readers never wait for the delivery workers' writes.
pub async fn connect_with_pool_size(url: &str, pool_size: u32) -> Result<DatabaseConnection, DbErr> {
    let pool_size = pool_size.max(1);
    let mut opts = ConnectOptions::new(url.to_string());
    // A request waits at most a few seconds for a connection, then answers 503: a database
    // that is down or saturated must not hold every request for half a minute.
    opts.sqlx_logging(false).acquire_timeout(Duration::from_secs(4)).connect_timeout(Duration::from_secs(4));
    // The pool would otherwise ping every connection it hands out: a round trip to PostgreSQL
    // (over TLS), or a hand-over to SQLite's thread, before every statement, as many as the
    // statements themselves. A connection in use is known to work; one idle for a while is
    // pinged first (PostgreSQL may have restarted, or a proxy dropped it), and one that fails
    // a statement is closed by the pool, so the caller's next statement gets a fresh one.
    opts.max_connections(pool_size).min_connections(1);
    if url.starts_with("sqlite:") {
        opts.test_before_acquire(false).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
    } else {
        opts.test_before_acquire_if_idle_for(IDLE_BEFORE_PING);
    }
    Database::connect(opts).await
}

/// Brings the schema up to date. On PostgreSQL under an advisory lock held for the whole
/// run, so processes starting together migrate one after the other (the later ones find
/// nothing left to do) instead of racing on the same tables.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return migrate_unless_newer(db).await;
    }
    // The lock lives in this transaction's session; the migrations run on other connections
    // of the pool, and the lock ends with the transaction. The waiting is done by polling,
    // not in a blocking statement: a statement waiting for the lock would hold a snapshot,
    // and `CREATE INDEX CONCURRENTLY` in the winner's migrations waits for every older
    // snapshot to end, so the two would wait for each other forever.
    let lock = loop {
        let txn = db.begin().await?;
        let row = txn
            .query_one_raw(sea_orm::Statement::from_string(
                DatabaseBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK}) AS locked"),
            ))
            .await?;
        if row.map(|r| r.try_get::<bool>("", "locked")).transpose()?.unwrap_or(false) {
            break txn;
        }
        txn.rollback().await?;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let result = migrate_unless_newer(db).await;
    lock.commit().await?;
    result
}

/// Runs the migrations this version has not applied yet. A database that a newer Hookline
/// has migrated further is left as it is: every migration only adds (columns with defaults,
/// tables, indexes), so this version runs on it, which is what lets a rolling upgrade roll
/// back, or an old process restart while new ones run.
async fn migrate_unless_newer(db: &DatabaseConnection) -> Result<(), DbErr> {
    let known: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
    let applied = Migrator::get_migration_models(db).await?;
    let newer: Vec<&str> =
        applied.iter().map(|m| m.version.as_str()).filter(|v| !known.iter().any(|k| k == v)).collect();
    if !newer.is_empty() {
        tracing::warn!(
            newer = ?newer,
            "the database was migrated by a newer Hookline; this version runs on it without migrating"
        );
        return Ok(());
    }
    Migrator::up(db, None).await
}

/// The advisory lock key of migrations: "hookline" in ASCII, as a number.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;
