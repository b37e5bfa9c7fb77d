//! Parking on both databases. Ordered deliveries: a claim parks what its key holds, and each
//! way a key moves on (a success, a skip, a delivery settled without an attempt, the sweep
//! after a lost wake-up) wakes the key's next delivery, and only that one. Paused webhooks: a
//! claim that finds one at the front of the queue parks its deliveries until the pause ends,
//! and a pause that ends early brings them back.

use std::future::Future;

use super::*;
use crate::store::ordering::{HeadMove, OrderedPlace};
use crate::store::queue::BREAKER_HOLD_MS;

impl TestDb {
    /// An ordered delivery of webhook `hook`, key `key`, number `seq`, due at `due` (NULL:
    /// parked), for a fresh event of the same id.
    async fn add_ordered(&self, id: &str, hook: &str, key: &str, seq: i64, status: &str, due: Option<i64>) {
        self.add_event(id).await;
        self.exec(
            "INSERT INTO deliveries (id, event_id, webhook_id, tenant_type, tenant_id, event_type, status, attempts, \
             manual_attempts, next_attempt_at, created_at, updated_at, ordering_key, ordering_seq) \
             VALUES ($1, $1, $2, 'store', 'store-a', 'review-created', $3, 0, 0, $4, 0, 0, $5, $6)",
            vec![id.into(), hook.into(), status.into(), due.into(), key.into(), seq.into()],
        )
        .await;
    }

    async fn due_of(&self, id: &str) -> Option<i64> {
        self.delivery(id).await.next_attempt_at
    }
}

/// Claims for holder `me` at `NOW`; the ids claimed, sorted.
async fn claim_ids(db: &TestDb) -> Vec<String> {
    claim_ids_at(db, NOW).await
}

fn ordered_success(delivery: &str, hook: &Arc<webhook::Model>) -> Attempt {
    Attempt { ordered: true, ..succeeded(delivery, hook) }
}

on_both_databases! {
    async fn a_claim_parks_what_the_key_holds_and_leaves_other_keys_due(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
        db.add_ordered("a2", "w", "a", 2, "pending", Some(NOW - 20)).await;
        db.add_ordered("a3", "w", "a", 3, "pending", Some(NOW - 10)).await;
        db.add_ordered("b1", "w", "b", 4, "pending", Some(NOW - 5)).await;
        db.add_event("plain").await;
        db.add_delivery("plain", "plain", "w", "pending", Some(NOW - 40), None).await;
        assert_eq!(claim_ids(db).await, ["a1", "b1", "plain"], "each key's head and the unordered one");
        assert_eq!((db.due_of("a2").await, db.due_of("a3").await), (None, None), "parked behind a1");
        assert_eq!(db.delivery("a2").await.status, "pending", "parked is still pending: it holds a3");
        assert!(claim_ids(db).await.is_empty(), "nothing is due while a1 is out");
        assert_eq!(db.store().count_due(NOW + 1_000, 100).await.unwrap(), 0, "parked ones are not counted as due");
        // The blocked keys list still counts what waits behind a failing head.
        let hook = db.webhook("w").await;
        db.store().record(&[Attempt { ordered: true, ..failed("a1", &hook, Some(500)) }], policy()).await.unwrap();
        let blocked = db.store().blocked_keys("w", None, 10).await.unwrap();
        assert_eq!(blocked.iter().map(|b| (b.ordering_key.as_str(), b.waiting)).collect::<Vec<_>>(), [("a", 2)]);
        assert_eq!(db.due_of("a2").await, None, "a failed attempt with a retry keeps the key held");
    }

    async fn a_success_wakes_only_the_keys_next_delivery(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
        db.add_ordered("a2", "w", "a", 2, "pending", Some(NOW - 20)).await;
        db.add_ordered("a3", "w", "a", 3, "pending", Some(NOW - 10)).await;
        db.add_ordered("c1", "w", "c", 4, "pending", Some(NOW - 10)).await;
        db.add_ordered("c2", "w", "c", 5, "pending", Some(NOW - 5)).await;
        assert_eq!(claim_ids(db).await, ["a1", "c1"]);
        let hook = db.webhook("w").await;
        // On PostgreSQL a batch of successes is one statement; a mixed batch a transaction.
        db.store().record(&[ordered_success("a1", &hook)], policy()).await.unwrap();
        assert_eq!(db.due_of("a2").await, Some(NOW), "woken when a1 succeeded");
        assert_eq!(db.due_of("a3").await, None, "a3 waits for a2");
        assert_eq!(db.due_of("c2").await, None, "another key is not woken");
        db.add_event("plain").await;
        db.add_delivery("plain", "plain", "w", "pending", Some(NOW + 60_000), None).await;
        db.store().record(&[ordered_success("c1", &hook), failed("plain", &hook, Some(500))], policy()).await.unwrap();
        assert_eq!(db.due_of("c2").await, Some(NOW), "woken by a mixed batch too");
        assert_eq!(claim_ids(db).await, ["a2", "c2"]);
        db.store().record(&[ordered_success("a2", &hook)], policy()).await.unwrap();
        assert_eq!(claim_ids(db).await, ["a3"], "the key goes on in its order");
    }

    async fn a_wake_up_rewrites_the_next_delivery_even_when_it_was_not_parked(db: &TestDb) {
        // What keeps a park that raced the settle from parking it (PostgreSQL): the park only
        // parks a row whose updated_at is still the one it read.
        db.add_webhook("w").await;
        db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
        assert_eq!(claim_ids(db).await, ["a1"]);
        db.add_ordered("a2", "w", "a", 2, "pending", Some(NOW - 20)).await;
        let updated = async |id: &str| -> i64 {
            let row = db
                .db
                .query_one_raw(Statement::from_sql_and_values(
                    db.db.get_database_backend(),
                    "SELECT updated_at FROM deliveries WHERE id = $1",
                    [id.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get("", "updated_at").unwrap()
        };
        let before = updated("a2").await;
        let hook = db.webhook("w").await;
        // A success written in the same millisecond the row was last written still changes it.
        let mut done = ordered_success("a1", &hook);
        done.ended_at = before;
        db.store().record(&[done], policy()).await.unwrap();
        assert_eq!(db.due_of("a2").await, Some(NOW - 20), "a due delivery keeps its time");
        assert!(updated("a2").await > before, "but its row is rewritten");
    }

    async fn a_failed_head_keeps_its_key_parked_until_skipped_or_retried(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
        db.add_ordered("a2", "w", "a", 2, "pending", Some(NOW - 20)).await;
        db.add_ordered("a3", "w", "a", 3, "pending", Some(NOW - 10)).await;
        assert_eq!(claim_ids(db).await, ["a1"]);
        let hook = db.webhook("w").await;
        let gave_up = attempt("a1", &hook, Some(500), Settle::To(DeliveryStatus::Failed, None));
        db.store().record(&[Attempt { ordered: true, ..gave_up }], policy()).await.unwrap();
        assert_eq!(db.due_of("a2").await, None, "a head failed for good still holds its key");
        // Retrying the head makes only the head due.
        assert_eq!(db.store().retry_head("a1", NOW).await.unwrap(), HeadMove::Moved);
        assert_eq!((db.due_of("a1").await, db.due_of("a2").await), (Some(NOW), None));
        assert_eq!(claim_ids(db).await, ["a1"]);
        let gave_up = attempt("a1", &hook, Some(500), Settle::To(DeliveryStatus::Failed, None));
        db.store().record(&[Attempt { ordered: true, ..gave_up }], policy()).await.unwrap();
        // Skipping it wakes the next one, in the same transaction.
        assert_eq!(db.store().skip_head("a1", NOW).await.unwrap(), HeadMove::Moved);
        assert_eq!((db.due_of("a2").await, db.due_of("a3").await), (Some(NOW), None));
        assert_eq!(db.store().skip_head("a1", NOW + 8).await.unwrap(), HeadMove::NotBlocked);
        assert_eq!(db.due_of("a3").await, None, "a skip that did not move the head wakes nothing");
        assert_eq!(claim_ids(db).await, ["a2"]);
    }

    async fn a_delivery_settled_without_an_attempt_wakes_its_keys_next(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
        db.add_ordered("a2", "w", "a", 2, "pending", Some(NOW - 20)).await;
        assert_eq!(claim_ids(db).await, ["a1"]);
        db.store().settle_unattempted("a1", "them", DeliveryStatus::Skipped, NOW).await.unwrap();
        assert_eq!(db.due_of("a2").await, None, "not settled (another's lease): nothing woken");
        db.store().settle_unattempted("a1", "me", DeliveryStatus::Skipped, NOW).await.unwrap();
        assert_eq!(db.due_of("a2").await, Some(NOW));
    }

    async fn the_sweep_wakes_only_what_nothing_holds_and_walks_every_key(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_webhook("v").await;
        // Key a: its head was deleted (retention) after a2 and a3 were parked behind it.
        db.add_ordered("a2", "w", "a", 2, "pending", None).await;
        db.add_ordered("a3", "w", "a", 3, "pending", None).await;
        // Key b: parked behind a head that failed for good: it stays parked.
        db.add_ordered("b1", "w", "b", 4, "failed", None).await;
        db.add_ordered("b2", "w", "b", 5, "pending", None).await;
        // Key c of another webhook: stranded too, found in a later step.
        db.add_ordered("c1", "v", "c", 6, "pending", None).await;
        db.add_ordered("c2", "v", "c", 7, "pending", None).await;
        let mut after: Option<OrderedPlace> = None;
        let mut woken = 0;
        let mut steps = 0;
        loop {
            let (next, n) = db.store().wake_stranded_step(after.as_ref(), 2, NOW).await.unwrap();
            woken += n;
            steps += 1;
            after = next;
            if after.is_none() {
                break;
            }
            assert!(steps < 10, "the sweep ends");
        }
        assert_eq!(woken, 2);
        assert_eq!(steps, 4, "six ordered deliveries, two a step, then an empty step");
        assert_eq!(
            (db.due_of("a2").await, db.due_of("a3").await, db.due_of("b2").await),
            (Some(NOW), None, None)
        );
        assert_eq!((db.due_of("c1").await, db.due_of("c2").await), (Some(NOW), None));
        assert_eq!(claim_ids(db).await, ["a2", "c1"]);
        // What is left parked is held by a head being sent: a new sweep wakes nothing.
        let (_, n) = db.store().wake_stranded_step(None, 100, NOW).await.unwrap();
        assert_eq!(n, 0, "nothing stranded left");
    }
}

impl TestDb {
    /// Opens webhook `id`'s breaker until `until` (its next probe).
    async fn open_breaker(&self, id: &str, until: i64) {
        self.exec(
            "UPDATE webhooks SET paused_until = $1, pause_reason = 'circuit_open', probe_interval_ms = 5000 WHERE id = $2",
            vec![until.into(), id.into()],
        )
        .await;
    }

    /// Pauses webhook `id` until `until`, as a receiver's `Retry-After` does.
    async fn pause(&self, id: &str, until: i64) {
        self.exec(
            "UPDATE webhooks SET paused_until = $1, pause_reason = 'retry_after', probe_interval_ms = NULL WHERE id = $2",
            vec![until.into(), id.into()],
        )
        .await;
    }
}

/// Where an open breaker due to probe at `probe` parks its deliveries.
const fn held(probe: i64) -> Option<i64> {
    Some(probe + BREAKER_HOLD_MS)
}

on_both_databases! {
    async fn a_claim_parks_a_paused_webhooks_deliveries_at_the_front_until_its_pause_ends(db: &TestDb) {
        db.add_webhook("paused").await;
        db.add_webhook("flowing").await;
        db.pause("paused", NOW + 5_000).await;
        db.add_event("e").await;
        db.add_delivery("p1", "e", "paused", "pending", Some(NOW - 30), None).await;
        db.add_delivery("p2", "e", "paused", "pending", Some(NOW - 20), None).await;
        db.add_delivery("lease-ran-out", "e", "paused", "delivering", Some(NOW - 25), Some("gone")).await;
        db.add_delivery("retry-later", "e", "paused", "pending", Some(NOW + 60_000), None).await;
        db.add_delivery("f1", "e", "flowing", "pending", Some(NOW - 10), None).await;
        assert_eq!(claim_ids(db).await, ["f1"]);
        assert_eq!((db.due_of("p1").await, db.due_of("p2").await), (Some(NOW + 5_000), Some(NOW + 5_000)));
        assert_eq!(db.due_of("lease-ran-out").await, Some(NOW - 25), "only pending ones are parked");
        assert_eq!(db.due_of("retry-later").await, Some(NOW + 60_000), "a later retry keeps its time");
        assert_eq!(db.delivery("p1").await.status, "pending");
        // A paused webhook's delivery behind one that flows is left to the claims to come:
        // it is not at the front.
        db.add_delivery("f0", "e", "flowing", "pending", Some(NOW - 100), None).await;
        db.add_delivery("p3", "e", "paused", "pending", Some(NOW - 50), None).await;
        let one = db.store().claim(lease("me"), NOW, 1, &[]).await.unwrap();
        assert_eq!(one.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["f0"]);
        assert_eq!(db.due_of("p3").await, Some(NOW - 50), "the front was f0's");
        assert!(claim_ids(db).await.is_empty(), "lease-ran-out still waits for the pause");
        assert_eq!(db.due_of("p3").await, Some(NOW + 5_000), "now it was at the front");
        // Once the pause ends they all go.
        let later = db.store().claim(lease("me"), NOW + 5_000, 50, &[]).await.unwrap();
        let mut ids: Vec<String> = later.into_iter().map(|c| c.id).collect();
        ids.sort();
        assert_eq!(ids, ["lease-ran-out", "p1", "p2", "p3"]);
    }

    async fn an_open_breaker_parks_its_backlog_past_its_probes_and_a_claim_takes_one_probe_by_its_id(db: &TestDb) {
        db.add_webhook("open").await;
        db.add_webhook("flowing").await;
        db.open_breaker("open", NOW + 5_000).await;
        db.add_event("e").await;
        for (id, due) in [("b1", NOW - 30), ("b2", NOW - 20), ("b3", NOW - 10)] {
            db.add_delivery(id, "e", "open", "pending", Some(due), None).await;
        }
        // The oldest: attempted once on its schedule, and waiting for its retry.
        db.add_delivery("a0", "e", "open", "pending", Some(NOW + 60_000), None).await;
        db.exec("UPDATE deliveries SET attempts = 1 WHERE id = 'a0'", vec![]).await;
        db.add_delivery("f1", "e", "flowing", "pending", Some(NOW - 5), None).await;
        assert_eq!(claim_ids(db).await, ["f1"]);
        assert_eq!(
            (db.due_of("b1").await, db.due_of("b2").await, db.due_of("b3").await),
            (held(NOW + 5_000), held(NOW + 5_000), held(NOW + 5_000)),
            "parked past the probe"
        );
        assert_eq!(db.due_of("a0").await, Some(NOW + 60_000), "a later retry keeps its time");
        assert_eq!(db.store().count_due(NOW + 5_000, 100).await.unwrap(), 0, "the probe makes none of them due");
        // The probe comes due: one claim takes one delivery, the webhook's oldest.
        let probe = db.store().claim(lease("me"), NOW + 5_000, 50, &[]).await.unwrap();
        assert_eq!(probe.iter().map(|c| (c.id.as_str(), c.attempts)).collect::<Vec<_>>(), [("a0", 1)]);
        assert_eq!(db.store().take_probe("open", NOW + 5_000).await.unwrap(), ProbeTaken::Taken);
        // The next probe is 5 s later: nothing goes meanwhile, and the rest stays parked.
        for at in [NOW + 5_001, NOW + 9_999] {
            assert!(db.store().claim(lease("me"), at, 50, &[]).await.unwrap().is_empty(), "at {at}");
        }
        assert_eq!((db.due_of("b2").await, db.due_of("b3").await), (held(NOW + 5_000), held(NOW + 5_000)));
        // A webhook full in the claiming process gets no probe from it.
        assert!(db.store().claim(lease("me"), NOW + 10_000, 50, &["open".into()]).await.unwrap().is_empty());
        // The probe failed: counted apart, its schedule kept, it waits with the backlog and goes
        // as the next probe.
        let hook = db.webhook("open").await;
        let down = Attempt {
            probe: true,
            settle: Settle::To(DeliveryStatus::Pending, held(NOW + 10_000)),
            steer: Some(Steer::Breaker { interval_ms: 10_000, until: NOW + 10_000 }),
            ..failed("a0", &hook, None)
        };
        db.store().record(&[down], policy()).await.unwrap();
        let row = db.delivery("a0").await;
        assert_eq!((row.attempts, row.manual_attempts, row.next_attempt_at), (2, 1, held(NOW + 10_000)));
        let next = db.store().claim(lease("me"), NOW + 10_000, 50, &[]).await.unwrap();
        assert_eq!(next.iter().map(|c| (c.id.as_str(), c.attempts)).collect::<Vec<_>>(), [("a0", 1)]);
        // The probe is taken, then given back (its process stopping): due at once, and parked
        // again, as the probe moved on.
        assert!(matches!(db.store().take_probe("open", NOW + 10_000).await.unwrap(), ProbeTaken::Taken));
        db.store().unclaim("me", &["a0".to_string()], NOW + 10_000).await.unwrap();
        assert!(claim_ids_at(db, NOW + 10_001).await.is_empty());
        assert_eq!(db.due_of("a0").await, held(NOW + 20_000));
        // A breaker whose probe nobody took within the hold: its backlog is due by then anyway
        // (and f1, whose lease ran out long before).
        let late = claim_ids_at(db, NOW + 20_000 + BREAKER_HOLD_MS).await;
        assert_eq!(late, ["a0", "b1", "b2", "b3", "f1"]);
    }

    async fn an_ordered_backlog_gives_its_probe_from_a_keys_head(db: &TestDb) {
        db.add_webhook("open").await;
        db.open_breaker("open", NOW + 5_000).await;
        // The older id is the later in its key.
        db.add_ordered("k-a", "open", "k", 2, "pending", held(NOW)).await;
        db.add_ordered("k-b", "open", "k", 1, "pending", held(NOW)).await;
        let probe = db.store().claim(lease("me"), NOW + 5_000, 50, &[]).await.unwrap();
        assert_eq!(probe.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["k-b"], "k-a waits for k-b");
    }

    async fn a_probe_is_looked_for_among_the_oldest_few_only(db: &TestDb) {
        db.add_webhook("open").await;
        db.open_breaker("open", NOW + 5_000).await;
        // A failed head holds its key, and the 16 oldest pending deliveries wait behind it.
        db.add_ordered("h01", "open", "k", 1, "failed", None).await;
        for seq in 2..=17 {
            db.add_ordered(&format!("h{seq:02}"), "open", "k", seq, "pending", None).await;
        }
        db.add_event("e").await;
        db.add_delivery("z", "e", "open", "pending", held(NOW), None).await;
        assert!(claim_ids_at(db, NOW + 5_000).await.is_empty(), "the probe waits rather than read the whole key");
        db.exec("DELETE FROM deliveries WHERE id = 'h17'", vec![]).await;
        assert_eq!(claim_ids_at(db, NOW + 5_000).await, ["z"]);
    }

    async fn a_breaker_that_closes_or_gives_way_to_retry_after_brings_its_parked_deliveries_back(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_webhook("other").await;
        db.open_breaker("w", NOW + 5_000).await;
        db.open_breaker("other", NOW + 5_000).await;
        db.add_event("e").await;
        for (id, hook) in [("parked", "w"), ("probe", "w"), ("untouched", "other")] {
            db.add_delivery(id, "e", hook, "pending", Some(NOW - 10), None).await;
        }
        db.add_delivery("retry-later", "e", "w", "pending", Some(NOW + 60_000), None).await;
        db.add_delivery("retry-past-the-hold", "e", "w", "pending", held(NOW + 6_000), None).await;
        assert!(claim_ids(db).await.is_empty());
        assert_eq!(db.due_of("parked").await, held(NOW + 5_000));
        // A receiver's Retry-After replaces the open breaker with a shorter pause.
        let hook = db.webhook("w").await;
        let mut busy = failed("probe", &hook, Some(429));
        busy.steer = Some(Steer::Pause { until: NOW + 1_000 });
        db.store().record(&[busy], policy()).await.unwrap();
        assert_eq!(db.due_of("parked").await, Some(NOW + 1_000), "due when the shorter pause ends");
        assert_eq!(db.due_of("retry-later").await, Some(NOW + 1_000), "due within the hold: it goes too");
        assert_eq!(db.due_of("retry-past-the-hold").await, held(NOW + 6_000), "its schedule was past the hold");
        // The breaker opens again, the claims park anew, and a 2xx closes it.
        db.open_breaker("w", NOW + 5_000).await;
        db.exec("UPDATE deliveries SET next_attempt_at = $1 WHERE id = 'parked'", vec![(NOW - 10).into()]).await;
        assert!(claim_ids(db).await.is_empty());
        assert_eq!(db.due_of("parked").await, held(NOW + 5_000));
        let mut ok = succeeded("probe", &hook);
        ok.steer = Some(Steer::Close);
        db.store().record(&[ok], policy()).await.unwrap();
        assert_eq!(db.due_of("parked").await, Some(NOW), "due at once: the endpoint answers again");
        assert_eq!(db.due_of("retry-past-the-hold").await, held(NOW + 6_000));
        assert_eq!(db.due_of("untouched").await, held(NOW + 5_000), "another webhook's breaker stays open");
        assert_eq!(claim_ids(db).await, ["parked", "retry-later"]);
    }

    async fn what_was_parked_as_the_breaker_closed_is_brought_back_after(db: &TestDb) {
        db.add_webhook("w").await;
        db.add_webhook("other").await;
        db.add_event("e").await;
        // Parked by a publish that read the breaker as open, and written after it closed.
        db.add_delivery("straggler", "e", "w", "pending", held(NOW - 1_000), None).await;
        db.add_delivery("retry-past-the-hold", "e", "w", "pending", held(NOW + 1_000), None).await;
        db.add_delivery("others", "e", "other", "pending", held(NOW - 1_000), None).await;
        // Paused again meanwhile: its rows stay where they are.
        db.pause("w", NOW + 1_000).await;
        assert_eq!(db.store().unpark_closed("w", NOW).await.unwrap(), 0);
        assert_eq!(db.due_of("straggler").await, held(NOW - 1_000));
        db.pause("w", NOW - 1).await;
        assert_eq!(db.store().unpark_closed("w", NOW).await.unwrap(), 1);
        assert_eq!(db.due_of("straggler").await, Some(NOW));
        assert_eq!(db.due_of("retry-past-the-hold").await, held(NOW + 1_000));
        assert_eq!(db.due_of("others").await, held(NOW - 1_000), "another webhook's are left");
        assert_eq!(claim_ids(db).await, ["straggler"]);
    }
}

/// Claims for holder `me` at `at`; the ids claimed, sorted.
async fn claim_ids_at(db: &TestDb, at: i64) -> Vec<String> {
    let mut ids: Vec<String> =
        db.store().claim(lease("me"), at, 50, &[]).await.unwrap().into_iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

impl TestDb {
    /// Makes each statement that fires `event` (a trigger's `AFTER … ON table`) take a second
    /// longer, after its snapshot was taken and before its transaction can commit.
    async fn linger_after(&self, event: &str) {
        self.exec(
            "CREATE OR REPLACE FUNCTION linger() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$",
            vec![],
        )
        .await;
        self.exec(
            &format!("CREATE TRIGGER linger {event} FOR EACH STATEMENT EXECUTE FUNCTION linger()"),
            vec![],
        )
        .await;
    }

    /// While `moving` moves a key's head on (key `key` of webhook `w`): the key's next
    /// delivery `next` (number `seq`) published once `moving` has read the database, and a
    /// claim, which still sees the head holding the key, parks it. Answers where `next` stands
    /// once `moving` is done.
    async fn publish_and_claim_while(
        &self,
        moving: impl Future<Output = ()>,
        after: Duration,
        (next, key, seq): (&str, &str, i64),
    ) -> Option<i64> {
        let racing = async {
            tokio::time::sleep(after).await;
            self.add_ordered(next, "w", key, seq, "pending", Some(NOW - 20)).await;
            assert!(claim_ids(self).await.is_empty(), "the head still holds the key as the claim reads it");
            assert_eq!(self.due_of(next).await, None, "the claim parked {next} behind the head");
        };
        tokio::join!(moving, racing);
        self.due_of(next).await
    }
}

// PostgreSQL only: each statement reads the database as it was when it started, and a key's
// next delivery published while its head's settling is being written is not the settling's to
// see. SQLite writes one transaction at a time.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_a_delivery_published_while_its_heads_success_was_written() {
    let Some(db) = TestDb::postgres().await else { return };
    db.add_webhook("w").await;
    db.add_ordered("a1", "w", "a", 1, "pending", Some(NOW - 30)).await;
    assert_eq!(claim_ids(&db).await, ["a1"]);
    db.linger_after("AFTER INSERT ON webhook_hours").await;
    let hook = db.webhook("w").await;
    // A batch of successes: one statement.
    let written = async {
        db.store().record(&[ordered_success("a1", &hook)], policy()).await.unwrap();
    };
    let due = db.publish_and_claim_while(written, Duration::from_millis(300), ("a2", "a", 2)).await;
    assert_eq!(due, Some(NOW), "woken once a1's success was written");
    assert_eq!(claim_ids(&db).await, ["a2"]);

    // A mixed batch: a transaction, the wake-up one of its statements.
    db.add_event("plain").await;
    db.add_delivery("plain", "plain", "w", "delivering", Some(NOW + 60_000), Some("me")).await;
    db.add_ordered("b1", "w", "b", 3, "pending", Some(NOW - 30)).await;
    assert_eq!(claim_ids(&db).await, ["b1"]);
    let written = async {
        let batch = [Attempt { ordered: true, ..succeeded("b1", &hook) }, failed("plain", &hook, Some(500))];
        db.store().record(&batch, policy()).await.unwrap();
    };
    let due = db.publish_and_claim_while(written, Duration::from_millis(300), ("b2", "b", 4)).await;
    assert_eq!(due, Some(NOW), "woken once b1's success was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_a_delivery_published_while_its_head_was_skipped_or_settled_unattempted() {
    let Some(db) = TestDb::postgres().await else { return };
    db.add_webhook("w").await;
    db.add_ordered("a1", "w", "a", 1, "failed", None).await;
    // Every update of a delivery lingers: the skip's, then its wake-up's (a2 is published
    // while the wake-up lingers), and the racing claim's.
    db.linger_after("AFTER UPDATE ON deliveries").await;
    let skipped = async {
        assert_eq!(db.store().skip_head("a1", NOW).await.unwrap(), HeadMove::Moved);
    };
    let due = db.publish_and_claim_while(skipped, Duration::from_millis(1_500), ("a2", "a", 2)).await;
    assert_eq!(due, Some(NOW), "woken once a1's skip was written");

    // A delivery settled without an attempt (its webhook was turned off meanwhile).
    db.exec("UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL WHERE id = 'a2'", vec![])
        .await;
    db.add_ordered("b1", "w", "b", 3, "delivering", Some(NOW + 60_000)).await;
    db.exec("UPDATE deliveries SET leased_by = 'me' WHERE id = 'b1'", vec![]).await;
    let settled = async {
        db.store().settle_unattempted("b1", "me", DeliveryStatus::Skipped, NOW).await.unwrap();
    };
    let due = db.publish_and_claim_while(settled, Duration::from_millis(1_500), ("b2", "b", 4)).await;
    assert_eq!(due, Some(NOW), "woken once b1 was settled");
}
