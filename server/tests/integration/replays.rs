//! Bulk replays: the dry run's count and sample, a replay re-sending exactly the chosen
//! deliveries to a real receiver with their `webhook-id`, progress to `finished`, resuming
//! after a crash from the cursor, one running replay per webhook, cancelling, scopes and
//! validation. The runner is driven step by step here ([`Replayer`]); the engine's deliveries
//! by `deliver_due`.

use hookline_core::entities::{delivery, replay};
use hookline_core::{REPLAY_LEASE_MS, ReplayStep, Replayer, now_ms};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use test_receiver::Receiver;

use crate::common::*;

/// Posts to `/webhooks/{id}/replays`; answers status, body and the Location header.
async fn post_replay(
    app: &TestApp,
    key: &str,
    webhook_id: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let path = format!("/webhooks/{webhook_id}/replays");
    let res = app
        .http
        .post(app.url(&format!("/api/v1{path}")))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the API answers");
    let status = res.status().as_u16();
    let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = res.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    crate::openapi::assert_documented("POST", &path, status, &answer);
    (status, answer, location)
}

/// Runs replays until none is left to run, delivering what each page queued.
async fn run_replays(app: &TestApp, page: u64) {
    let mut replayer = Replayer::new(page);
    for _ in 0..1_000 {
        match replayer.step(&app.services).await.expect("a replay step") {
            ReplayStep::Idle => {
                app.deliver_due().await;
                return;
            }
            ReplayStep::Waiting => {
                app.deliver_due().await;
            }
            ReplayStep::Worked => {}
        }
    }
    panic!("the replays did not end");
}

/// The webhook's deliveries, oldest first.
async fn deliveries(app: &TestApp, webhook_id: &str) -> Vec<delivery::Model> {
    delivery::Entity::find()
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .order_by_asc(delivery::Column::Id)
        .all(app.services.database())
        .await
        .unwrap()
}

/// Sets a delivery's status and creation time, as if it had settled so at that time.
async fn settle(app: &TestApp, d: &delivery::Model, status: &str, created_at: i64) {
    let mut row = d.clone().into_active_model();
    row.status = Set(status.parse().unwrap());
    row.created_at = Set(created_at);
    row.update(app.services.database()).await.unwrap();
}

/// A store-a webhook to a real receiver with `n` delivered events: types alternate between
/// `review-created` and `communication.sms.sent.v1`, created a minute apart from `T0`.
async fn delivered(app: &TestApp, receiver: &Receiver, n: usize) -> (String, Vec<delivery::Model>) {
    let (webhook_id, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
    receiver.set_secret(&secret);
    for i in 0..n {
        let kind = if i % 2 == 0 { "review-created" } else { "communication.sms.sent.v1" };
        app.publish("store-a", kind, json!({"n": i})).await;
    }
    assert_eq!(app.deliver_due().await, n);
    let all = deliveries(app, &webhook_id).await;
    for (i, d) in all.iter().enumerate() {
        settle(app, d, "succeeded", T0 + i as i64 * 60_000).await;
    }
    let settled = deliveries(app, &webhook_id).await;
    (webhook_id, settled)
}

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

async fn replay_row(app: &TestApp, id: &str) -> replay::Model {
    replay::Entity::find_by_id(id).one(app.services.database()).await.unwrap().expect("the replay")
}

on_both_databases! {
    async fn a_dry_run_counts_and_samples_exactly_what_the_choice_holds(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, all) = delivered(&app, &receiver, 14).await;
        // Deliveries 0..4 failed, 4..6 were skipped, the rest succeeded.
        for (i, d) in all.iter().enumerate().take(6) {
            settle(&app, d, if i < 4 { "failed" } else { "skipped" }, d.created_at).await;
        }
        let key = app.store_a_key.clone();
        let dry = |body: Value| {
            let mut body = body;
            body["dry_run"] = json!(true);
            post_replay(&app, &key, &hook, body)
        };

        // Everything settled, and the sample is the first ten in delivery order.
        let (status, body, location) = dry(json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(location, None, "a dry run starts nothing");
        assert_eq!(body["count"], 14);
        let sample: Vec<&str> = body["sample"].as_array().unwrap().iter().map(|s| s["delivery_id"].as_str().unwrap()).collect();
        let first_ten: Vec<&str> = all.iter().take(10).map(|d| d.id.as_str()).collect();
        assert_eq!(sample, first_ten);
        assert_eq!(body["sample"][0]["event_id"], all[0].event_id.as_str());
        assert_eq!(body["sample"][0]["event_type"], "review-created");
        assert_eq!(body["sample"][0]["status"], "failed");
        assert_eq!(body["sample"][0]["created_at"], "2026-01-01T00:00:00Z");

        // One status as a string, several as a list.
        assert_eq!(dry(json!({"status": "failed"})).await.1["count"], 4);
        assert_eq!(dry(json!({"status": ["failed", "skipped"]})).await.1["count"], 6);
        // Event types: every other delivery is `review-created`.
        let (_, body, _) = dry(json!({"event_types": ["review-created"], "status": ["failed"]})).await;
        assert_eq!(body["count"], 2);
        assert!(body["sample"].as_array().unwrap().iter().all(|s| s["event_type"] == "review-created"));
        // From inclusive, to exclusive: minutes 3, 4 and 5.
        let (_, body, _) = dry(json!({"from": "2026-01-01T00:03:00Z", "to": "2026-01-01T00:06:00Z"})).await;
        assert_eq!(body["count"], 3);
        assert_eq!(body["sample"][0]["delivery_id"], all[3].id.as_str());
        // The same instant in another offset.
        let (_, body, _) = dry(json!({"from": "2026-01-01T01:03:00+01:00", "to": "2026-01-01T00:06:00Z", "status": "skipped"})).await;
        assert_eq!(body["count"], 2);
        // Nothing was queued by any of it.
        assert!(deliveries(&app, &hook).await.iter().all(|d| d.status.is_final()));
        assert_eq!(replay::Entity::find().all(app.services.database()).await.unwrap().len(), 0);
    }

    async fn a_replay_resends_exactly_the_chosen_deliveries_with_their_webhook_id(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, all) = delivered(&app, &receiver, 6).await;
        // Two failed for good after the whole retry schedule; one succeeded at minute 1.
        for d in [&all[1], &all[4]] {
            let mut row = d.clone().into_active_model();
            row.status = Set("failed".parse().unwrap());
            row.attempts = Set(4);
            row.update(app.services.database()).await.unwrap();
        }
        let before = receiver.received().len();

        let (status, body, location) = post_replay(&app, &app.store_a_key, &hook, json!({"status": ["failed"]})).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        assert_eq!(location.as_deref(), Some(format!("/api/v1/replays/{id}").as_str()));
        assert_eq!((body["state"].as_str(), body["total"].as_i64(), body["done"].as_i64()), (Some("running"), Some(2), Some(0)));
        assert_eq!(body["webhook_id"], hook.as_str());
        assert_eq!(body["status"], json!(["failed"]));
        assert!(body["to"].is_string(), "without `to`, the choice ends when the replay starts");

        run_replays(&app, 500).await;
        let got = receiver.received();
        let resent: Vec<&str> = got[before..].iter().map(|r| r.header("webhook-id").unwrap()).collect();
        let mut expected = vec![all[1].event_id.as_str(), all[4].event_id.as_str()];
        let mut sorted = resent.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "exactly the failed deliveries were sent again, with their webhook-id");
        assert!(got[before..].iter().all(|r| r.verified), "signed like any delivery");
        let after = deliveries(&app, &hook).await;
        assert_eq!(after[1].status, "succeeded");
        assert_eq!(after[1].attempts, 5, "one more attempt on the same delivery");
        assert_eq!(after[0].attempts, 1, "a delivery not chosen is left alone");

        let (status, progress) = app.api("GET", &format!("/replays/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{progress}");
        assert_eq!(progress["state"], "finished");
        assert_eq!((progress["done"].as_i64(), progress["total"].as_i64()), (Some(2), Some(2)));
        assert!(progress["finished_at"].is_string());
        let (_, list) = app.api("GET", &format!("/webhooks/{hook}/replays"), Some(&app.store_a_key), None).await;
        assert_eq!(list["items"][0]["id"], id.as_str());
    }

    async fn a_failing_receiver_gets_a_fresh_retry_schedule(backend: Backend) {
        // A delivery that used up its schedule is retried again when replayed: the claim
        // counts scheduled attempts from zero once more. (One retry, an hour away: the test
        // sees the first failure and the retry it schedules.)
        let app = spawn_with(backend, &[("HOOKLINE_WORKERS", "false"), ("HOOKLINE_RETRY_SCHEDULE", "1h")]).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, all) = delivered(&app, &receiver, 1).await;
        let mut row = all[0].clone().into_active_model();
        row.status = Set("failed".parse().unwrap());
        row.attempts = Set(4);
        row.update(app.services.database()).await.unwrap();
        receiver.configure(test_receiver::Behaviour { status: Some(500), ..Default::default() });
        let (status, body, _) = post_replay(&app, &app.admin_key, &hook, json!({})).await;
        assert_eq!(status, 202, "{body}");
        run_replays(&app, 500).await;
        let d = &deliveries(&app, &hook).await[0];
        assert_eq!((d.status.as_str(), d.attempts), ("pending", 5), "a retry is scheduled after the first failure");
        assert!(d.next_attempt_at.is_some());
    }

    async fn a_replay_resumes_after_a_crash_from_its_cursor(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, all) = delivered(&app, &receiver, 6).await;
        let (status, body, _) = post_replay(&app, &app.store_a_key, &hook, json!({"status": "succeeded"})).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();

        // A process queued the first three and died: its cursor is half-way, its lease is fresh.
        let mut row = replay_row(&app, &id).await.into_active_model();
        row.cursor = Set(Some(all[2].id.clone()));
        row.done = Set(3);
        row.updated_at = Set(now_ms());
        let held = row.update(app.services.database()).await.unwrap();
        assert_eq!(Replayer::new(2).step(&app.services).await.unwrap(), ReplayStep::Idle, "a live lease is not taken");

        // Its lease runs out: another runner takes over from the cursor.
        let mut row = held.into_active_model();
        row.updated_at = Set(now_ms() - REPLAY_LEASE_MS - 1);
        row.update(app.services.database()).await.unwrap();
        let before = receiver.received().len();
        run_replays(&app, 2).await;
        let resent: Vec<String> =
            receiver.received()[before..].iter().map(|r| r.header("webhook-id").unwrap().to_string()).collect();
        let mut expected: Vec<String> = all[3..].iter().map(|d| d.event_id.clone()).collect();
        let mut sorted = resent.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "only the deliveries after the cursor, each once");
        let done = replay_row(&app, &id).await;
        assert_eq!((done.state.as_str(), done.done, done.total), ("finished", 6, 6));
    }

    async fn one_replay_runs_per_webhook_and_a_running_one_can_be_cancelled(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, _) = delivered(&app, &receiver, 3).await;
        let key = app.store_a_key.clone();
        let (status, body, _) = post_replay(&app, &key, &hook, json!({})).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, second, _) = post_replay(&app, &key, &hook, json!({})).await;
        assert_eq!(status, 409, "{second}");
        assert!(second["error"]["message"].as_str().unwrap().contains(&id));
        // A dry run is still fine.
        assert_eq!(post_replay(&app, &key, &hook, json!({"dry_run": true})).await.0, 200);

        let (status, cancelled) = app.api("POST", &format!("/replays/{id}/cancel"), Some(&key), None).await;
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["state"], "cancelled");
        assert_eq!(Replayer::new(500).step(&app.services).await.unwrap(), ReplayStep::Idle);
        assert!(deliveries(&app, &hook).await.iter().all(|d| d.status == "succeeded"), "nothing was queued");
        let (status, again) = app.api("POST", &format!("/replays/{id}/cancel"), Some(&key), None).await;
        assert_eq!(status, 409, "{again}");

        // A webhook that is off cannot replay; nor can a choice that holds nothing.
        let (status, _, _) = post_replay(&app, &key, &hook, json!({"status": "skipped"})).await;
        assert_eq!(status, 422);
        let (status, _) = app.api("POST", &format!("/webhooks/{hook}/toggle"), Some(&key), Some(json!({"enabled": false}))).await;
        assert_eq!(status, 200);
        let (status, body, _) = post_replay(&app, &key, &hook, json!({})).await;
        assert_eq!(status, 409, "{body}");
    }

    async fn a_webhook_turned_off_mid_replay_ends_it_as_failed(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, _) = delivered(&app, &receiver, 2).await;
        let (_, body, _) = post_replay(&app, &app.store_a_key, &hook, json!({})).await;
        let id = body["id"].as_str().unwrap().to_string();
        app.services.set_webhook_enabled(&hookline_core::Scope::Admin, &hook, false).await.unwrap();
        run_replays(&app, 500).await;
        let ended = replay_row(&app, &id).await;
        assert_eq!((ended.state.as_str(), ended.done), ("failed", 0));
        assert_eq!(ended.error.as_deref(), Some("The webhook was turned off."));
    }

    async fn replays_reach_only_the_callers_webhooks(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, _) = delivered(&app, &receiver, 2).await;
        // Another store sees neither the webhook nor its replays.
        let (status, _, _) = post_replay(&app, &app.store_b_key, &hook, json!({"dry_run": true})).await;
        assert_eq!(status, 404);
        let (status, _, _) = post_replay(&app, &app.store_b_key, &hook, json!({})).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("GET", &format!("/webhooks/{hook}/replays"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        // An admin replays any store's webhook.
        let (status, body, _) = post_replay(&app, &app.admin_key, &hook, json!({})).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap();
        for (method, path) in [("GET", format!("/replays/{id}")), ("POST", format!("/replays/{id}/cancel"))] {
            let (status, _) = app.api(method, &path, Some(&app.store_b_key), None).await;
            assert_eq!(status, 404, "{method} {path}");
        }
        let (status, seen) = app.api("GET", &format!("/replays/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!((status, seen["state"].as_str()), (200, Some("running")));
        // An application installed on the store sees only the webhooks it made there.
        let admin = Some(app.admin_key.as_str());
        app.api("POST", "/applications", admin, Some(json!({"id": "app-x", "name": "X"}))).await;
        app.api("POST", "/applications/app-x/installations", admin, Some(json!({"store_id": "store-a"}))).await;
        let (_, app_key) = app.api("POST", "/api-keys", admin, Some(json!({"name": "x", "scope": "application:app-x"}))).await;
        let app_key = app_key["key"].as_str().unwrap().to_string();
        let (status, _, _) = post_replay(&app, &app_key, &hook, json!({"dry_run": true})).await;
        assert_eq!(status, 404, "not the application's webhook");
        let (status, _) = app.api("GET", &format!("/replays/{id}"), Some(&app_key), None).await;
        assert_eq!(status, 404);
        let (status, own) = app
            .api("POST", "/webhooks", Some(&app_key), Some(json!({"tenant_type": "store", "tenant_id": "store-a", "url": receiver.url("/app")})))
            .await;
        assert_eq!(status, 201, "{own}");
        let (status, body, _) = post_replay(&app, &app_key, own["id"].as_str().unwrap(), json!({"dry_run": true})).await;
        assert_eq!((status, body["count"].as_u64()), (200, Some(0)), "{body}");

        let (status, _) = app.api("GET", "/replays/nope", Some(&app.admin_key), None).await;
        assert_eq!(status, 404);
        let (status, _) = app.api("GET", &format!("/replays/{id}"), None, None).await;
        assert_eq!(status, 401);
    }

    async fn bad_choices_are_refused_naming_the_field(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, _) = delivered(&app, &receiver, 1).await;
        for (body, code, field) in [
            (json!({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}), 400, "from"),
            (json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}), 400, "from"),
            (json!({"from": "yesterday"}), 400, "from"),
            (json!({"to": "2026-02-30T00:00:00Z"}), 400, "to"),
            (json!({"to": 5}), 400, "to"),
            (json!({"status": "lost"}), 400, "status"),
            (json!({"status": ["failed", "pending"]}), 400, "status"),
            (json!({"status": []}), 400, "status"),
            (json!({"status": 3}), 400, "status"),
            (json!({"event_types": ["no.such.type"]}), 422, "event_types"),
            (json!({"event_types": "review-created"}), 400, "event_types"),
            (json!({"dry_run": "yes"}), 400, "dry_run"),
        ] {
            for dry_run in [true, false] {
                let mut body = body.clone();
                if body.get("dry_run").is_none() {
                    body["dry_run"] = json!(dry_run);
                }
                let (status, answer, _) = post_replay(&app, &app.store_a_key, &hook, body.clone()).await;
                assert_eq!(status, code, "{body}: {answer}");
                assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
            }
        }
        // A misspelt field would widen the choice: refused.
        let (status, answer, _) = post_replay(&app, &app.store_a_key, &hook, json!({"event_type": ["review-created"]})).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(replay::Entity::find().all(app.services.database()).await.unwrap().len(), 0, "nothing started");
    }

    async fn a_process_that_delivers_runs_replays_in_the_background(backend: Backend) {
        // With its workers on, the process runs the replay itself and sends what it queues.
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        receiver.set_secret(&secret);
        let events = [app.publish("store-a", "review-created", json!({"n": 1})).await, app.publish("store-a", "review-created", json!({"n": 2})).await];
        receiver.wait_for(2, std::time::Duration::from_secs(10)).await;
        assert!(app.wait_until(std::time::Duration::from_secs(10), async || deliveries(&app, &hook).await.iter().all(|d| d.status == "succeeded")).await);

        let (status, body, _) = post_replay(&app, &app.store_a_key, &hook, json!({"event_types": ["review-created"]})).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let got = receiver.wait_for(4, std::time::Duration::from_secs(15)).await;
        let mut resent: Vec<&str> = got[2..].iter().map(|r| r.header("webhook-id").unwrap()).collect();
        resent.sort_unstable();
        let mut expected: Vec<&str> = events.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(resent, expected);
        let finished = app
            .wait_until(std::time::Duration::from_secs(10), async || {
                let (_, r) = app.api("GET", &format!("/replays/{id}"), Some(&app.store_a_key), None).await;
                r["state"] == "finished" && r["done"] == 2 && r["total"] == 2
            })
            .await;
        assert!(finished, "the replay finished with done = total");
    }

    async fn the_dashboard_checks_starts_and_lists_replays(backend: Backend) {
        // The server functions behind the webhook page's form, as a browser without
        // JavaScript calls them.
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, all) = delivered(&app, &receiver, 3).await;
        settle(&app, &all[2], "failed", all[2].created_at).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let form = [("id", hook.as_str()), ("status", "failed"), ("from", "2026-01-01T00:01"), ("event_types", "")];
        let (status, body) = app.server_fn(&cookie, "replay_check", &form).await;
        assert_eq!(status, 200, "{body}");
        let check: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(check["count"], 1);
        assert_eq!(check["sample"][0]["delivery_id"], all[2].id.as_str());
        let (status, body) = app.server_fn(&cookie, "replay_check", &[("id", hook.as_str()), ("from", "soon")]).await;
        assert_eq!(status, 400, "{body}");

        let other = app.sign_in("merchant@b.test", PASSWORD).await.expect("signed in");
        assert_eq!(app.server_fn(&other, "replay_check", &form).await.0, 404);
        assert_eq!(app.server_fn(&other, "replay_start", &form).await.0, 404);
        assert_eq!(replay::Entity::find().all(app.services.database()).await.unwrap().len(), 0);

        let (status, body) = app.server_fn(&cookie, "replay_start", &form).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = app.server_fn(&cookie, "replays", &[("id", hook.as_str())]).await;
        assert_eq!(status, 200, "{body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((rows[0]["state"].as_str(), rows[0]["total"].as_i64()), (Some("running"), Some(1)));
        assert_eq!(app.server_fn(&other, "replays", &[("id", hook.as_str())]).await.0, 404);
        run_replays(&app, 500).await;
        let (_, body) = app.server_fn(&cookie, "replays", &[("id", hook.as_str())]).await;
        let rows: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((rows[0]["state"].as_str(), rows[0]["done"].as_i64()), (Some("finished"), Some(1)));
        assert_eq!(receiver.received().last().unwrap().header("webhook-id"), Some(all[2].event_id.as_str()));
    }
}
