//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Connects to `sqlite://...` or `postgres://...`. SQLite runs in WAL mode with a pool of
/// connections, so readers never wait for the delivery workers' writes.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    // A request waits at most a few seconds for a connection, then answers 503: a database
    // that is down or saturated must not hold every request for half a minute.
    opts.sqlx_logging(false).acquire_timeout(Duration::from_secs(4)).connect_timeout(Duration::from_secs(4));
    if url.starts_with("sqlite:") {
        opts.max_connections(8).min_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    } else {
        opts.max_connections(8).min_connections(1);
    }
    Database::connect(opts).await
}

/// Brings the schema up to date. On PostgreSQL under an advisory lock held for the whole
/// run, so processes starting together migrate one after the other (the later ones find
/// nothing left to do) instead of racing on the same tables.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    // The lock lives in this transaction's session; the migrations run on other connections
    // of the pool, and the lock ends with the transaction.
    let lock = db.begin().await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
    let result = Migrator::up(db, None).await;
    lock.commit().await?;
    result
}

/// The advisory lock key of migrations: "hookline" in ASCII, as a number.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;
