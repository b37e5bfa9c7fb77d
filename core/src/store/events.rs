//! Writing events: the tenants' counters (sequence numbers, the ordering counter) moved in one
//! statement that also reads their recipients' versions, and a batch's events with their
//! deliveries in multi-row statements (on PostgreSQL, one statement for both).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryTrait,
    Statement,
};

use crate::entities::{delivery, event};
use crate::error::{Error, Result};
use hookline_domain::{Tenant, TenantType};

/// A counter to move: the tenant's row of `sequences` for `resource`, by `by`.
pub struct Counter<'a> {
    pub tenant: &'a Tenant,
    pub resource: &'a str,
    pub by: i64,
}

/// What moving the counters answers: each counter's new value, in the order given, and the
/// recipients' version of each tenant that has one (a tenant absent has never changed).
pub struct Moved {
    pub values: Vec<i64>,
    pub versions: HashMap<Tenant, i64>,
}

/// Moves each counter by its `by` and answers the new values, strictly increasing: the
/// upsert locks each row until the statement (or the caller's transaction) ends. Give the
/// counters in one fixed order (by tenant, then resource), so two writers holding several
/// never wait on each other. Each counter's tenant's recipients' version comes back in the
/// same statement, read in its snapshot: one round trip for both.
pub async fn advance_counters(conn: &impl ConnectionTrait, counters: &[Counter<'_>]) -> Result<Moved> {
    if counters.is_empty() {
        return Ok(Moved { values: Vec::new(), versions: HashMap::new() });
    }
    let rows = conn.query_all_raw(advance_counters_statement(conn.get_database_backend(), counters)).await?;
    let rows = rows.iter().map(|row| -> Result<MovedRow> {
        Ok((
            row.try_get("", "tenant_type")?,
            row.try_get("", "tenant_id")?,
            row.try_get("", "resource")?,
            row.try_get("", "value")?,
            row.try_get("", "version")?,
        ))
    });
    moved(counters, rows)
}

/// A row of [`advance_counters_statement`]: tenant type and id, resource, the counter's new
/// value, the tenant's recipients' version.
pub type MovedRow = (String, String, String, i64, Option<i64>);

/// The statement of [`advance_counters`] (at least one counter), for a caller that runs it
/// itself; [`moved`] reads its rows.
pub fn advance_counters_statement(backend: DatabaseBackend, counters: &[Counter<'_>]) -> Statement {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(counters.len() * 4);
    for c in counters {
        values.extend([
            c.tenant.kind.as_str().into(),
            c.tenant.id.clone().into(),
            c.resource.into(),
            c.by.into(),
        ]);
    }
    let sql = format!(
        "INSERT INTO sequences (tenant_type, tenant_id, resource, value) VALUES {} \
         ON CONFLICT (tenant_type, tenant_id, resource) DO UPDATE SET value = sequences.value + excluded.value \
         RETURNING tenant_type, tenant_id, resource, value, \
         (SELECT version FROM recipient_versions v WHERE v.tenant_type = sequences.tenant_type \
          AND v.tenant_id = sequences.tenant_id) AS version",
        super::placeholders(counters.len(), 4, 0)
    );
    super::statement(backend, sql, values)
}

/// What [`advance_counters_statement`] answered, in the counters' order.
pub fn moved(counters: &[Counter<'_>], rows: impl Iterator<Item = Result<MovedRow>>) -> Result<Moved> {
    let mut by_counter: HashMap<(String, String, String), i64> = HashMap::with_capacity(counters.len());
    let mut versions = HashMap::new();
    for row in rows {
        let (tenant_type, tenant_id, resource, value, version) = row?;
        if let (Some(version), Ok(kind)) = (version, tenant_type.parse::<TenantType>()) {
            versions.insert(Tenant { kind, id: tenant_id.clone() }, version);
        }
        by_counter.insert((tenant_type, tenant_id, resource), value);
    }
    let values = counters
        .iter()
        .map(|c| {
            by_counter
                .get(&(c.tenant.kind.as_str().to_string(), c.tenant.id.clone(), c.resource.to_string()))
                .copied()
                .ok_or(Error::NotFound("sequence"))
        })
        .collect::<Result<Vec<i64>>>()?;
    Ok(Moved { values, versions })
}

/// Writes the rows with multi-row statements, inside the caller's transaction.
pub async fn insert_rows(
    txn: &DatabaseTransaction,
    events: &[Arc<event::Model>],
    deliveries: &[delivery::Model],
) -> Result<()> {
    for statement in insert_rows_statements(txn.get_database_backend(), events, deliveries) {
        txn.execute_raw(statement).await?;
    }
    Ok(())
}

/// The statements of [`insert_rows`], for a caller that runs them itself.
pub fn insert_rows_statements(
    backend: DatabaseBackend,
    events: &[Arc<event::Model>],
    deliveries: &[delivery::Model],
) -> Vec<Statement> {
    let rows: Vec<(&event::Model, Number)> =
        events.iter().map(|e| (&**e, Number::Given(e.sequence))).collect();
    rows_statements(backend, &rows, deliveries)
}

/// How an event's row gets its number: given, or read from its counter's row (moved earlier
/// in the same transaction) less `back`.
enum Number<'a> {
    Given(i64),
    FromCounter(&'a Counter<'a>, i64),
}

/// The multi-row inserts of `events` and `deliveries`, a chunk of rows per statement.
fn rows_statements(
    backend: DatabaseBackend,
    events: &[(&event::Model, Number)],
    deliveries: &[delivery::Model],
) -> Vec<Statement> {
    let rows = crate::rows_per_statement(backend);
    let mut statements = Vec::with_capacity(events.len().div_ceil(rows) + deliveries.len().div_ceil(rows));
    for chunk in events.chunks(rows) {
        // The values straight from the events: a payload may be 256 KiB, and a model turned
        // into an `ActiveModel`, then into sea-query's statement, was two more copies of it.
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 13);
        // The text is written in place: one string per chunk, none per row.
        let mut sql = String::from(
            "INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, idempotency_key, sequence, \
             received_at, payload_pruned_at, ordering_key) VALUES ",
        );
        for (i, (e, number)) in chunk.iter().enumerate() {
            let head = values.len() + 1;
            values.extend([
                e.id.clone().into(),
                e.tenant_type.into(),
                e.tenant_id.clone().into(),
                e.event_type.clone().into(),
                e.payload.clone().into(),
                e.idempotency_key.clone().into(),
            ]);
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(
                sql,
                "{sep}(${head}, ${}, ${}, ${}, ${}, ${}, ",
                head + 1,
                head + 2,
                head + 3,
                head + 4,
                head + 5
            );
            let first = values.len() + 1;
            match number {
                Number::Given(n) => {
                    values.push((*n).into());
                    let _ = write!(sql, "${first}");
                }
                Number::FromCounter(c, back) => {
                    values.extend([
                        c.tenant.kind.as_str().into(),
                        c.tenant.id.clone().into(),
                        c.resource.into(),
                        (*back).into(),
                    ]);
                    let _ = write!(
                        sql,
                        "(SELECT value FROM sequences WHERE tenant_type = ${first} AND tenant_id = ${} \
                         AND resource = ${}) - ${}",
                        first + 1,
                        first + 2,
                        first + 3
                    );
                }
            }
            let rest = values.len() + 1;
            values.extend([e.received_at.into(), e.payload_pruned_at.into(), e.ordering_key.clone().into()]);
            let _ = write!(sql, ", ${rest}, ${}, ${})", rest + 1, rest + 2);
        }
        statements.push(super::statement(backend, sql, values));
    }
    for chunk in deliveries.chunks(rows) {
        let models = chunk.iter().map(|d| delivery::ActiveModel::from(d.clone()));
        statements.push(delivery::Entity::insert_many(models).build(backend));
    }
    statements
}

/// An event of [`insert_numbered_postgres`] with the counter that numbers it: its number is
/// the counter's new value less `back` (the events behind it on the same counter).
pub struct Numbered<'a> {
    pub event: &'a event::Model,
    /// Index into the counters.
    pub counter: usize,
    pub back: i64,
}

/// On SQLite, a statement that fails unless each tenant's recipients' version is still the
/// one given (a tenant absent from `recipient_versions` has version 0): put ahead of a
/// transaction's writes, it stops the transaction before its commit when a batch was planned
/// on copies of the recipients that have since changed. SQLite has no statement that raises
/// an error of its own outside a trigger, so it inserts a row that breaks `sequences`'
/// `NOT NULL` constraints, and only then.
pub fn fail_if_recipients_moved(versions: &[(&Tenant, i64)]) -> Statement {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(versions.len() * 3);
    let mut unchanged = Vec::with_capacity(versions.len());
    for (tenant, version) in versions {
        values.extend([tenant.kind.as_str().into(), tenant.id.clone().into(), (*version).into()]);
        unchanged.push(
            "COALESCE((SELECT version FROM recipient_versions WHERE tenant_type = ? AND tenant_id = ?), 0) = ?",
        );
    }
    let sql = format!(
        "INSERT INTO sequences (tenant_type, tenant_id, resource, value) SELECT NULL, NULL, NULL, NULL \
         WHERE NOT ({})",
        if unchanged.is_empty() { "1".to_string() } else { unchanged.join(" AND ") }
    );
    Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)
}

/// On SQLite, the events numbered by their counters, which the statement before has moved
/// ([`advance_counters_statement`]), and their deliveries: each event's number is read from
/// its counter's row in the same transaction, so the batch needs no answer in between.
pub fn insert_numbered_sqlite(
    counters: &[Counter<'_>],
    events: &[Numbered<'_>],
    deliveries: &[delivery::Model],
) -> Vec<Statement> {
    let rows: Vec<(&event::Model, Number)> =
        events.iter().map(|n| (n.event, Number::FromCounter(&counters[n.counter], n.back))).collect();
    rows_statements(DatabaseBackend::Sqlite, &rows, deliveries)
}

/// The connection a publish writer keeps from one batch to the next on PostgreSQL. Taken
/// from the pool and given back to it after each statement, a connection is pinged by the
/// pool on its way back (sqlx always does): one more round trip after every publish, which
/// both processes pay, and at low load, where every event is a batch of its own, as many as
/// the publishes themselves (BENCHMARKS.md, Change 19). Kept, it is given back when its
/// writer has been idle a while ([`KeptConnection::give_back`]) or a statement on it failed.
#[derive(Default)]
pub struct KeptConnection(Option<sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>>);

impl KeptConnection {
    pub fn holds(&self) -> bool {
        self.0.is_some()
    }

    /// Back to the pool, for the other users of the process.
    pub fn give_back(&mut self) {
        self.0 = None;
    }
}

/// The one text of [`insert_numbered_postgres`]: the same for every batch, so each
/// connection prepares and plans it once. Each row's columns come as typed arrays of the
/// same length, read side by side by one `unnest`: `$1`–`$4` the counters, `$5`–`$7` the
/// recipients' versions checked, `$8`–`$17` the events, `$18`–`$31` their deliveries.
const INSERT_NUMBERED: &str = "WITH counters AS (INSERT INTO sequences (tenant_type, tenant_id, resource, value) \
     SELECT tenant_type, tenant_id, resource, by \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS c (tenant_type, tenant_id, resource, by) \
     WHERE CAST(CASE WHEN EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[], $7::bigint[]) \
     AS k (tenant_type, tenant_id, version) \
     WHERE COALESCE((SELECT r.version FROM recipient_versions r \
     WHERE r.tenant_type = k.tenant_type AND r.tenant_id = k.tenant_id), 0) <> k.version) \
     THEN 'recipients moved' ELSE '1' END AS int) = 1 \
     ON CONFLICT (tenant_type, tenant_id, resource) DO UPDATE SET value = sequences.value + excluded.value \
     RETURNING tenant_type, tenant_id, resource, value), \
     new_events AS (INSERT INTO events (id, tenant_type, tenant_id, event_type, payload, idempotency_key, \
     sequence, received_at, ordering_key) \
     SELECT v.id, v.tenant_type, v.tenant_id, v.event_type, v.payload, v.idempotency_key, c.value - v.back, \
     v.received_at, v.ordering_key \
     FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
     $15::bigint[], $16::bigint[], $17::text[]) AS v (id, tenant_type, tenant_id, event_type, payload, \
     idempotency_key, resource, back, received_at, ordering_key) \
     JOIN counters c ON c.tenant_type = v.tenant_type AND c.tenant_id = v.tenant_id AND c.resource = v.resource \
     RETURNING id, sequence), \
     new_deliveries AS (INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, \
     status, attempts, next_attempt_at, leased_by, created_at, updated_at, ordering_key, ordering_seq) \
     SELECT * FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], \
     $24::text[], $25::int[], $26::bigint[], $27::text[], $28::bigint[], $29::bigint[], $30::text[], \
     $31::bigint[]) \
     RETURNING 1) \
     SELECT id, sequence FROM new_events";

/// On PostgreSQL, the counters moved, the events numbered by them and their deliveries
/// written, all in one statement: one round trip and one commit (with synchronous commit on,
/// one WAL flush instead of two). Answers each event's sequence number by id.
///
/// `planned_on` is the version of each tenant's recipients the batch was planned on, when it
/// was planned on this process's copies without reading the versions first: the statement
/// then fails unless they are still current (PostgreSQL has no statement that raises an
/// error of its own outside a function, so a cast of the text "recipients moved" fails, and
/// only then), writes nothing, and this answers `None`.
///
/// The rows go as one typed array per column, bound in PostgreSQL's binary form, so the
/// statement has one text whatever the batch: as `VALUES` lists of a placeholder per cell it
/// had a text per batch shape, and PostgreSQL planned most executions anew. As arrays rather
/// than JSON documents read by `json_to_recordset`, PostgreSQL neither parses the rows as
/// JSON text nor joins the payloads back to their events (BENCHMARKS.md, Change 18).
pub async fn insert_numbered_postgres(
    db: &DatabaseConnection,
    kept: &mut KeptConnection,
    counters: &[Counter<'_>],
    events: &[Numbered<'_>],
    deliveries: &[delivery::Model],
    planned_on: &[(&Tenant, i64)],
) -> Result<Option<HashMap<String, i64>>> {
    if events.is_empty() {
        return Ok(Some(HashMap::new()));
    }
    fn column<'r, T, U>(rows: &'r [T], cell: impl Fn(&'r T) -> U) -> Vec<U> {
        rows.iter().map(cell).collect()
    }
    let query = sea_orm::sqlx::query(INSERT_NUMBERED)
        .bind(column(counters, |c| c.tenant.kind.as_str()))
        .bind(column(counters, |c| c.tenant.id.as_str()))
        .bind(column(counters, |c| c.resource))
        .bind(column(counters, |c| c.by))
        .bind(column(planned_on, |(t, _)| t.kind.as_str()))
        .bind(column(planned_on, |(t, _)| t.id.as_str()))
        .bind(column(planned_on, |(_, version)| *version))
        .bind(column(events, |n| n.event.id.as_str()))
        .bind(column(events, |n| n.event.tenant_type.as_str()))
        .bind(column(events, |n| n.event.tenant_id.as_str()))
        .bind(column(events, |n| n.event.event_type.as_str()))
        .bind(column(events, |n| n.event.payload.as_str()))
        .bind(column(events, |n| n.event.idempotency_key.as_deref()))
        .bind(column(events, |n| counters[n.counter].resource))
        .bind(column(events, |n| n.back))
        .bind(column(events, |n| n.event.received_at))
        .bind(column(events, |n| n.event.ordering_key.as_deref()))
        .bind(column(deliveries, |d| d.id.as_str()))
        .bind(column(deliveries, |d| d.event_id.as_str()))
        .bind(column(deliveries, |d| d.webhook_id.as_str()))
        .bind(column(deliveries, |d| d.tenant_type.as_str()))
        .bind(column(deliveries, |d| d.tenant_id.as_str()))
        .bind(column(deliveries, |d| d.event_type.as_str()))
        .bind(column(deliveries, |d| d.status.as_str()))
        .bind(column(deliveries, |d| d.attempts))
        .bind(column(deliveries, |d| d.next_attempt_at))
        .bind(column(deliveries, |d| d.leased_by.as_deref()))
        .bind(column(deliveries, |d| d.created_at))
        .bind(column(deliveries, |d| d.updated_at))
        .bind(column(deliveries, |d| d.ordering_key.as_deref()))
        .bind(column(deliveries, |d| d.ordering_seq));
    let mut conn = match kept.0.take() {
        Some(conn) => conn,
        None => db.get_postgres_connection_pool().acquire().await.map_err(super::sqlx_failed)?,
    };
    let rows = match query.fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(e) if recipients_moved(&e) => {
            kept.0 = Some(conn);
            return Ok(None);
        }
        // Given back: the pool tests it and closes it if it is broken.
        Err(e) => return Err(super::sqlx_failed(e)),
    };
    kept.0 = Some(conn);
    use sea_orm::sqlx::Row as _;
    let numbers = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<String, _>(0).map_err(super::sqlx_failed)?,
                row.try_get::<i64, _>(1).map_err(super::sqlx_failed)?,
            ))
        })
        .collect::<Result<HashMap<String, i64>>>()?;
    if numbers.len() != events.len() {
        // Cannot be, short of a bug: every event's counter is in the statement.
        return Err(Error::Db(sea_orm::DbErr::Custom("an event was left without its number".into())));
    }
    Ok(Some(numbers))
}

/// Whether `e` is [`INSERT_NUMBERED`]'s check failing: the cast of "recipients moved"
/// (`invalid_text_representation`).
fn recipients_moved(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.code().is_some_and(|c| c == "22P02") && d.message().contains("recipients moved"))
}

/// The recipients' version of each of `tenants` that has one (a read: no commit to wait for).
pub async fn recipient_versions(
    conn: &impl ConnectionTrait,
    tenants: &[Tenant],
) -> Result<HashMap<Tenant, i64>> {
    if tenants.is_empty() {
        return Ok(HashMap::new());
    }
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(tenants.len() * 2);
    for t in tenants {
        values.extend([t.kind.as_str().into(), t.id.clone().into()]);
    }
    let sql = format!(
        "SELECT tenant_type, tenant_id, version FROM recipient_versions WHERE (tenant_type, tenant_id) IN ({})",
        super::placeholders(tenants.len(), 2, 0)
    );
    let rows =
        conn.query_all_raw(Statement::from_sql_and_values(conn.get_database_backend(), sql, values)).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("", "tenant_type")?;
        if let Ok(kind) = kind.parse::<TenantType>() {
            out.insert(Tenant { kind, id: row.try_get("", "tenant_id")? }, row.try_get("", "version")?);
        }
    }
    Ok(out)
}
