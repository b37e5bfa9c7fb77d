//! The admin overview's daily rollups (`webhook_days`, `hour_totals`, `rollup_days`): the
//! week's figures read from them are the sums of the hourly counters, whatever was rolled up,
//! forgotten, written late within the grace, pruned by retention or purged with a webhook.

use hookline_core::store::Store;
use hookline_core::store::overview::{
    DAY_MS, EndpointTotals, HourTotals, ROLLUP_GRACE_MS, Ranking, day_of, rank,
};
use hookline_core::{HOUR_MS, OverviewPeriod, Scope, now_ms};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::common::*;

type Figures = (Vec<HourTotals>, Vec<EndpointTotals>);

/// The week the overview shows now: 168 hours ending with the current one.
fn week() -> (i64, i64) {
    let to = (now_ms() / HOUR_MS + 1) * HOUR_MS;
    (to - 7 * DAY_MS, to)
}

/// Hourly counters of `webhook` for every hour in `[from, to)` but every seventh, each
/// different (by hour and by `salt`), as the recorder would have left them.
async fn seed(db: &DatabaseConnection, webhook: &str, from: i64, to: i64, salt: i64) {
    let n = (to - from) / HOUR_MS;
    let sql = format!(
        "WITH RECURSIVE h(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM h WHERE j < {}) \
         INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) \
         SELECT $1, $2 + j * {HOUR_MS}, 1 + j % 5 + $3, j % 3, (j % 11) * 40 + $3 FROM h WHERE j % 7 <> 3",
        n - 1
    );
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [webhook.into(), from.into(), salt.into()],
    ))
    .await
    .unwrap();
}

/// What the recorder does with a batch: adds to the webhook's counter of the hour.
async fn count(db: &DatabaseConnection, webhook: &str, hour: i64, succeeded: i64) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed, duration_ms) VALUES ($1, $2, $3, 0, 10) \
         ON CONFLICT (webhook_id, hour) DO UPDATE SET succeeded = webhook_hours.succeeded + excluded.succeeded, \
         duration_ms = webhook_hours.duration_ms + excluded.duration_ms",
        [webhook.into(), hour.into(), succeeded.into()],
    ))
    .await
    .unwrap();
}

/// The figures summed from the hourly counters alone (what the overview read before rollups).
async fn from_hours(store: &Store<'_>, from: i64, to: i64) -> Figures {
    let (hours, mut endpoints) =
        tokio::try_join!(store.hour_totals(from, to), store.endpoint_totals(from, to)).unwrap();
    endpoints.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
    (hours, endpoints)
}

/// The figures as the overview reads them: rolled-up days from the rollups.
async fn as_read(store: &Store<'_>, from: i64, to: i64) -> Figures {
    let (hours, mut endpoints) = store.overview_totals(from, to).await.unwrap();
    endpoints.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
    (hours, endpoints)
}

async fn roll_up_all(app: &TestApp) {
    let mut steps = 0;
    while app.services.overview_rollup_step().await.unwrap() {
        steps += 1;
        assert!(steps < 10, "a step adds up a day, and there are six");
    }
}

async fn rows(db: &DatabaseConnection, sql: &str, value: sea_orm::Value) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, [value]))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn webhook(app: &TestApp, store: &str) -> String {
    app.create_webhook(store, "http://127.0.0.1:9/never", None).await.0
}

on_both_databases! {
    async fn the_week_from_the_rollups_is_the_week_from_the_hourly_counters(backend: Backend) {
        let app = spawn_driven(backend).await;
        let db = app.services.database();
        let store = app.services.store();
        let a = webhook(&app, "store-a").await;
        let b = webhook(&app, "store-b").await;
        let (from, to) = week();
        // Counters from before the week too, and of a webhook without a row (as the hours
        // of one whose purge has not finished are).
        seed(db, &a, from - 30 * HOUR_MS, to, 0).await;
        seed(db, &b, from, to, 7).await;
        seed(db, "no-such-webhook", from + 5 * HOUR_MS, to - 5 * HOUR_MS, 3).await;
        let expected = from_hours(&store, from, to).await;
        assert_eq!(expected.1.len(), 3);
        assert_eq!(as_read(&store, from, to).await, expected, "nothing rolled up yet");

        roll_up_all(&app).await;
        let rolled = store.rolled_days(from, to).await.unwrap();
        // Six whole days in the week; yesterday only once its hour of grace has passed.
        assert!(rolled.len() == 6 || (rolled.len() == 5 && now_ms() - day_of(now_ms()) < ROLLUP_GRACE_MS), "{rolled:?}");
        let day_rows = "SELECT COUNT(*) AS n FROM webhook_days WHERE day >= $1";
        assert_eq!(rows(db, day_rows, from.into()).await, 3 * rolled.len() as i64);
        // The week's first hours and its last day or two come from the hourly counters.
        assert_eq!(as_read(&store, from, to).await, expected);

        // Idempotent: nothing left to do, and a day added up again changes nothing.
        assert!(!app.services.overview_rollup_step().await.unwrap());
        store.roll_up_day(rolled[1], now_ms()).await.unwrap();
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled);
        assert_eq!(rows(db, day_rows, from.into()).await, 3 * rolled.len() as i64);
        assert_eq!(as_read(&store, from, to).await, expected);

        // A day in the middle forgotten: read from its hours, between rolled-up days.
        store.forget_rolled_days(rolled[2] + HOUR_MS, rolled[2] + 2 * HOUR_MS).await.unwrap();
        let left = store.rolled_days(from, to).await.unwrap();
        assert_eq!(left.len(), rolled.len() - 1);
        assert!(!left.contains(&rolled[2]));
        assert_eq!(as_read(&store, from, to).await, expected);
        roll_up_all(&app).await;
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled);

        // The page's week (the week of its own hour): the same hours and the same rankings
        // (the webhook without a row is counted per hour but named nowhere).
        let overview = app.services.overview(&Scope::Admin, OverviewPeriod::Week).await.unwrap();
        let start = overview.hours[0].hour;
        let expected = from_hours(&store, start, start + 7 * DAY_MS).await;
        let counted: Vec<HourTotals> = overview.hours.iter().filter(|h| h.succeeded + h.failed > 0).cloned().collect();
        assert_eq!(counted, expected.0);
        let ids = |stats: &[hookline_core::EndpointStat]| stats.iter().map(|s| s.totals.clone()).collect::<Vec<_>>();
        let named = |ranking| {
            rank(&expected.1, ranking, 10).into_iter().filter(|t| t.webhook_id != "no-such-webhook").collect::<Vec<_>>()
        };
        assert_eq!(ids(&overview.most_failing), named(Ranking::MostFailing));
        assert_eq!(ids(&overview.slowest), named(Ranking::Slowest));
    }

    async fn a_day_is_added_up_after_its_grace_with_counters_written_late(backend: Backend) {
        let app = spawn_driven(backend).await;
        let db = app.services.database();
        let store = app.services.store();
        let a = webhook(&app, "store-a").await;
        let day = day_of(now_ms()) - 3 * DAY_MS;
        seed(db, &a, day - DAY_MS, day + DAY_MS, 1).await;

        // Half an hour after the day ended: the day before is added up, this one not yet.
        let early = day + DAY_MS + 30 * 60_000;
        while store.overview_rollup_step(early).await.unwrap() {}
        assert_eq!(store.rolled_days(day - DAY_MS, day + DAY_MS).await.unwrap(), vec![day - DAY_MS]);
        // The recorder's late batch: the day's last hour, and a new counter in its first.
        count(db, &a, day + 23 * HOUR_MS, 5).await;
        count(db, &a, day, 2).await;

        let past_grace = day + DAY_MS + ROLLUP_GRACE_MS;
        while store.overview_rollup_step(past_grace).await.unwrap() {}
        assert_eq!(store.rolled_days(day - DAY_MS, day + DAY_MS).await.unwrap(), vec![day - DAY_MS, day]);
        let expected = from_hours(&store, day - DAY_MS, day + DAY_MS).await;
        assert_eq!(as_read(&store, day - DAY_MS, day + DAY_MS).await, expected);
        let last = expected.0.iter().find(|h| h.hour == day + 23 * HOUR_MS).unwrap();
        assert_eq!(last.succeeded, 1 + 47 % 5 + 1 + 5, "the late counter is in the day");
        assert_eq!(expected.0.iter().find(|h| h.hour == day).unwrap().succeeded, 2);
        let rolled: i64 = rows(
            db,
            "SELECT CAST(SUM(succeeded) AS BIGINT) AS n FROM webhook_days WHERE day = $1",
            day.into(),
        )
        .await;
        let hourly: i64 = expected.0.iter().filter(|h| h.hour >= day).map(|h| h.succeeded).sum();
        assert_eq!(rolled, hourly);
    }

    async fn pruned_hourly_counters_take_their_days_out_of_the_rollups(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_WORKERS", "false"), ("HOOKLINE_RETENTION", "4d")]).await;
        let db = app.services.database();
        let store = app.services.store();
        let a = webhook(&app, "store-a").await;
        let b = webhook(&app, "store-b").await;
        let (from, to) = week();
        seed(db, &a, from, to, 0).await;
        seed(db, &b, from, to, 2).await;
        roll_up_all(&app).await;
        let rolled = store.rolled_days(from, to).await.unwrap();

        // Past 4 days: pruned, and the days they were in added up again from what is left.
        let done = app.services.prune(false).await.unwrap();
        assert!(done.webhook_hours > 0, "{done:?}");
        let cut = now_ms() - 4 * DAY_MS - HOUR_MS;
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled, "the round adds them up again");
        let stale = "SELECT COUNT(*) AS n FROM webhook_days WHERE day < $1";
        assert_eq!(rows(db, stale, day_of(cut).into()).await, 0, "days wholly pruned hold nothing");

        // A store's own, shorter retention: its webhooks' counters and their days.
        app.services.set_store_retention(&Scope::Admin, "store-a", Some("2d")).await.unwrap();
        let done = app.services.prune(false).await.unwrap();
        assert!(done.webhook_hours > 0, "{done:?}");
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled);
        let past = format!(
            "SELECT COUNT(*) AS n FROM webhook_days WHERE webhook_id = $1 AND day < {}",
            day_of(now_ms() - 2 * DAY_MS - HOUR_MS)
        );
        assert_eq!(rows(db, &past, a.clone().into()).await, 0, "store-a's days past its 2 days hold nothing of it");
        assert!(rows(db, &past, b.clone().into()).await > 0, "store-b keeps its days");
    }

    async fn a_deleted_webhooks_counters_leave_the_rollups_with_its_purge(backend: Backend) {
        let app = spawn_driven(backend).await;
        let db = app.services.database();
        let store = app.services.store();
        let a = webhook(&app, "store-a").await;
        let b = webhook(&app, "store-a").await;
        let c = webhook(&app, "store-b").await;
        let (from, to) = week();
        for (hook, salt) in [(&a, 0), (&b, 4), (&c, 9)] {
            seed(db, hook, from, to, salt).await;
        }
        roll_up_all(&app).await;
        let rolled = store.rolled_days(from, to).await.unwrap();
        let of = "SELECT COUNT(*) AS n FROM webhook_days WHERE webhook_id = $1";

        // Deleted: counted per hour until its purge removes its counters, as before rollups.
        app.services.delete_webhook(&Scope::Admin, &a).await.unwrap();
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        while app.services.purge_deleted_webhooks_step().await.unwrap() > 0 {}
        assert_eq!(rows(db, "SELECT COUNT(*) AS n FROM webhook_hours WHERE webhook_id = $1", a.clone().into()).await, 0);
        // The purge's last step forgot its rollups at once: nothing stale until the next round.
        assert_eq!(rows(db, of, a.clone().into()).await, 0);
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        // The next rollup step adds those days up again, without it.
        roll_up_all(&app).await;
        assert_eq!(rows(db, of, a.clone().into()).await, 0);
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled);

        // What the purge's last step calls: forgotten at once, nothing stale in between.
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "DELETE FROM webhook_hours WHERE webhook_id = $1",
            [b.clone().into()],
        ))
        .await
        .unwrap();
        store.forget_webhook_rollups(&b).await.unwrap();
        assert_eq!(rows(db, of, b.clone().into()).await, 0);
        assert!(store.rolled_days(from, to).await.unwrap().is_empty(), "b had counters every day");
        assert_eq!(as_read(&store, from, to).await, from_hours(&store, from, to).await);
        roll_up_all(&app).await;
        assert_eq!(store.rolled_days(from, to).await.unwrap(), rolled);
        let expected = from_hours(&store, from, to).await;
        assert_eq!(expected.1.iter().map(|t| t.webhook_id.clone()).collect::<Vec<_>>(), vec![c.clone()]);
        assert_eq!(as_read(&store, from, to).await, expected);
        assert!(rows(db, of, c.into()).await > 0);
    }
}

#[test]
fn the_week_splits_into_rolled_up_days_and_hourly_ranges() {
    use hookline_core::store::overview::split_by_days;
    let d = |n: i64| 20_000 * DAY_MS + n * DAY_MS;
    let from = d(0) + 5 * HOUR_MS;
    let to = d(7) + 3 * HOUR_MS;
    assert_eq!(split_by_days(from, to, &[]), (vec![], vec![(from, to)]));
    assert_eq!(
        split_by_days(from, to, &[d(1), d(2), d(4), d(5)]),
        (vec![(d(1), d(3)), (d(4), d(6))], vec![(from, d(1)), (d(3), d(4)), (d(6), to)])
    );
    // A day not wholly inside is left to the hours.
    assert_eq!(
        split_by_days(from, to, &[d(0), d(6), d(7)]),
        (vec![(d(6), d(7))], vec![(from, d(6)), (d(7), to)])
    );
}
