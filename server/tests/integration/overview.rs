//! The admin overview at `/admin` (counters per hour, the most failing and slowest endpoints,
//! the queue, the webhooks turned off; admins only) and the webhook page's signature check
//! through its plain form post, each against real receivers.

use hookline_core::{HOUR_MS, OverviewPeriod, Scope, now_ms};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use test_receiver::{Behaviour, Received, Receiver};

use crate::common::*;

/// The store's webhooks, one per behaviour, each with its receiver.
struct Endpoints {
    ok: (String, Receiver),
    slow: (String, Receiver),
    failing: (String, Receiver),
    gone: (String, Receiver),
}

async fn endpoint(app: &TestApp, path: &str, types: Vec<&str>, behaviour: Behaviour) -> (String, Receiver) {
    let receiver = Receiver::start().await.unwrap();
    let (id, _) = app.create_webhook("store-a", &receiver.url(path), Some(types)).await;
    receiver.configure(behaviour);
    (id, receiver)
}

/// Four events delivered once each: `ok` gets all four, `failing` all four (answering 500),
/// `slow` and `gone` (410, so it is turned off) only the `review-updated`.
async fn delivered(app: &TestApp) -> Endpoints {
    let both = vec!["review-created", "review-updated"];
    let status = |s: u16| Behaviour { status: Some(s), ..Default::default() };
    let endpoints = Endpoints {
        ok: endpoint(app, "/ok", both.clone(), status(200)).await,
        slow: endpoint(
            app,
            "/slow",
            vec!["review-updated"],
            Behaviour { delay_ms: Some(150), ..status(200) },
        )
        .await,
        failing: endpoint(app, "/failing", both, status(500)).await,
        gone: endpoint(app, "/gone", vec!["review-updated"], status(410)).await,
    };
    for n in 0..3 {
        app.publish("store-a", "review-created", json!({"n": n})).await;
    }
    app.publish("store-a", "review-updated", json!({"n": 3})).await;
    // One attempt each: the failures' retries are an hour away.
    assert_eq!(app.deliver_due().await, 10);
    endpoints
}

/// Hookline delivering when the test says, retrying failures an hour later.
async fn spawn_overview(backend: Backend) -> TestApp {
    spawn_with(backend, &[("HOOKLINE_WORKERS", "false"), ("HOOKLINE_RETRY_SCHEDULE", "1h")]).await
}

async fn set_disabled_at(app: &TestApp, id: &str, at: i64) {
    let db = app.services.database();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE webhooks SET enabled = $1, disabled_reason = 'manual', disabled_at = $2 WHERE id = $3",
        [false.into(), at.into(), id.into()],
    ))
    .await
    .unwrap();
}

on_both_databases! {
    async fn the_overview_counts_per_hour_what_the_receivers_got(backend: Backend) {
        let app = spawn_overview(backend).await;
        let e = delivered(&app).await;
        let succeeded = (e.ok.1.received().len() + e.slow.1.received().len()) as i64;
        let failed = (e.failing.1.received().len() + e.gone.1.received().len()) as i64;
        assert_eq!((succeeded, failed), (5, 5));

        for period in [OverviewPeriod::Day, OverviewPeriod::Week] {
            let o = app.services.overview(&Scope::Admin, period).await.unwrap();
            assert_eq!(o.hours.len() as i64, period.hours());
            assert_eq!(o.hours.iter().map(|h| h.succeeded).sum::<i64>(), succeeded);
            assert_eq!(o.hours.iter().map(|h| h.failed).sum::<i64>(), failed);
            // Every hour in order, the current one last, and the attempts in the latest two.
            assert!(o.hours.windows(2).all(|w| w[1].hour - w[0].hour == HOUR_MS));
            assert_eq!(o.hours.last().unwrap().hour, now_ms() / HOUR_MS * HOUR_MS);
            let recent: i64 = o.hours.iter().rev().take(2).map(|h| h.succeeded + h.failed).sum();
            assert_eq!(recent, 10);
            // The slow endpoint's 150 ms are counted as time, not just as an attempt.
            assert!(o.hours.iter().map(|h| h.duration_ms).sum::<i64>() >= 150);
        }
    }

    async fn the_most_failing_and_slowest_endpoints_are_ranked(backend: Backend) {
        let app = spawn_overview(backend).await;
        let e = delivered(&app).await;
        let o = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();

        let failing: Vec<(&str, i64)> =
            o.most_failing.iter().map(|s| (s.webhook.id.as_str(), s.totals.failed)).collect();
        // Endpoints without a failure are not "failing" at all.
        assert_eq!(failing, vec![(e.failing.0.as_str(), 4), (e.gone.0.as_str(), 1)]);

        let slowest: Vec<&str> = o.slowest.iter().map(|s| s.webhook.id.as_str()).collect();
        assert_eq!(slowest.len(), 4, "every endpoint with an attempt: {slowest:?}");
        assert_eq!(slowest[0], e.slow.0, "the 150 ms endpoint first");
        assert!(o.slowest[0].totals.mean_ms() >= 150, "{:?}", o.slowest[0].totals);
        assert_eq!(o.slowest[0].totals.attempts(), 1);
        assert!(o.slowest.windows(2).all(|w| w[0].totals.mean_ms() >= w[1].totals.mean_ms()));
    }

    async fn the_queue_shows_what_is_due_and_how_long_it_waited(backend: Backend) {
        let app = spawn_overview(backend).await;
        let o = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();
        assert_eq!((o.due, o.oldest_due_at), (0, None));
        delivered(&app).await;
        // The failing endpoint's four retries wait an hour: nothing is due yet.
        let o = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();
        assert_eq!((o.due, o.oldest_due_at), (0, None));
        // Their hour has passed: one came due ten minutes ago, the others since.
        let db = app.services.database();
        let ten_minutes_ago = now_ms() - 10 * 60_000;
        for (sql, at) in [
            ("UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending'", ten_minutes_ago + 60_000),
            (
                "UPDATE deliveries SET next_attempt_at = $1 \
                 WHERE id = (SELECT MIN(id) FROM deliveries WHERE status = 'pending')",
                ten_minutes_ago,
            ),
        ] {
            db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, [at.into()]))
                .await
                .unwrap();
        }
        let o = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();
        assert_eq!((o.due, o.oldest_due_at), (4, Some(ten_minutes_ago)));
    }

    async fn webhooks_turned_off_in_the_period_are_listed(backend: Backend) {
        let app = spawn_overview(backend).await;
        let e = delivered(&app).await;
        app.services.set_webhook_enabled(&Scope::Admin, &e.ok.0, false).await.unwrap();
        set_disabled_at(&app, &e.slow.0, now_ms() - 2 * 24 * HOUR_MS).await;
        set_disabled_at(&app, &e.failing.0, now_ms() - 8 * 24 * HOUR_MS).await;

        let ids = |o: &hookline_core::Overview| o.turned_off.iter().map(|w| w.id.clone()).collect::<Vec<_>>();
        let day = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();
        // Latest first: turned off by hand just now, then by its 410.
        assert_eq!(ids(&day), vec![e.ok.0.clone(), e.gone.0.clone()]);
        let week = app.services.overview(&Scope::Admin, OverviewPeriod::Week).await.unwrap();
        assert_eq!(ids(&week), vec![e.ok.0.clone(), e.gone.0.clone(), e.slow.0.clone()]);
        // Turned on again: no longer listed.
        app.services.set_webhook_enabled(&Scope::Admin, &e.ok.0, true).await.unwrap();
        let day = app.services.overview(&Scope::Admin, OverviewPeriod::Day).await.unwrap();
        assert_eq!(ids(&day), vec![e.gone.0.clone()]);
    }

    async fn only_admins_see_the_overview(backend: Backend) {
        let app = spawn_overview(backend).await;
        let e = delivered(&app).await;
        app.services.create_admin("ops@example.com", PASSWORD).await.unwrap();
        let merchant = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let admin = app.sign_in("ops@example.com", PASSWORD).await.unwrap();

        let res = app.http.get(app.url("/admin")).header("cookie", &merchant).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let html = res.text().await.unwrap();
        assert!(html.contains("Not found") && !html.contains("/failing"), "{html}");
        let (status, body) = app.server_fn(&merchant, "admin_overview", &[]).await;
        assert_eq!(status, 404, "{body}");
        assert!(app.services.overview(&Scope::Store("store-a".into()), OverviewPeriod::Day).await.is_err());
        // Not signed in: the login page.
        let res = app.http.get(app.url("/admin")).send().await.unwrap();
        assert!(res.status().is_redirection() || res.status() == 401, "{}", res.status());

        for path in ["/admin", "/admin?period=7d"] {
            let res = app.http.get(app.url(path)).header("cookie", &admin).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let html = res.text().await.unwrap();
            assert!(html.contains("<svg") && html.contains("5 successful and 5 failed attempts"), "{path}: {html}");
            assert!(html.contains(&format!("data-webhook-id=\"{}\"", e.failing.0)), "{path}");
            assert!(html.contains("The endpoint answered 410 Gone."), "{path}");
        }
        let html = app.http.get(app.url("/admin?period=7d")).header("cookie", &admin).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("attempts in the last 7 days"));
    }
}

/// The received request's headers, as a person would paste them.
fn pasted_headers(got: &Received) -> String {
    got.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// Posts the signature check as a browser without the WebAssembly does; answers the verdict
/// the page it is sent back to shows.
async fn check_by_form(
    app: &TestApp,
    cookie: &str,
    webhook: &str,
    headers: &str,
    body: &str,
    secret: &str,
) -> String {
    let form = [("id", webhook), ("headers", headers), ("body", body), ("secret", secret)];
    let res = app
        .http
        .post(app.url("/ui/check_signature"))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&format!("/settings/api/webhooks/{webhook}?signature_check=")), "{back}");
    let res = app.http.get(app.url(&back)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let start = html.find("id=\"signature-verdict\"").expect("a verdict on the page");
    let end = html[start..].find("</div>").unwrap();
    html[start..start + end].to_string()
}

on_both_databases! {
    async fn the_signature_check_form_explains_a_real_delivery(backend: Backend) {
        let app = spawn_driven(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let (hook, secret) = app.create_webhook("store-a", &receiver.url("/hooks"), None).await;
        receiver.set_secret(&secret);
        app.publish("store-a", "review-created", json!({"review": {"id": 7, "rating": 5}})).await;
        assert_eq!(app.deliver_due().await, 1);
        let got = receiver.received().remove(0);
        assert!(got.verified);
        let headers = pasted_headers(&got);
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();

        let verdict = check_by_form(&app, &cookie, &hook, &headers, &got.body, "").await;
        assert!(verdict.contains("Verifies"), "{verdict}");
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&got.body).unwrap()).unwrap();
        let verdict = check_by_form(&app, &cookie, &hook, &headers, &pretty, "").await;
        assert!(verdict.contains("Body changed") && verdict.contains("whitespace"), "{verdict}");
        let without: String = headers.lines().filter(|l| !l.starts_with("webhook-timestamp")).map(|l| format!("{l}\n")).collect();
        let verdict = check_by_form(&app, &cookie, &hook, &without, &got.body, "").await;
        assert!(verdict.contains("Missing header") && verdict.contains("webhook-timestamp"), "{verdict}");
        let verdict = check_by_form(&app, &cookie, &hook, &headers, &got.body, &hookline_core::generate_secret()).await;
        assert!(verdict.contains("Wrong secret"), "{verdict}");

        // After a rotation, the request signed before it names the old secret and when.
        app.services.rotate_secret(&Scope::Admin, &hook).await.unwrap();
        let verdict = check_by_form(&app, &cookie, &hook, &headers, &got.body, "").await;
        assert!(verdict.contains("Rotated secret") && verdict.contains("rotated out on"), "{verdict}");
    }

    async fn the_signature_check_reaches_only_the_webhooks_owner(backend: Backend) {
        let app = spawn_driven(backend).await;
        let (theirs, _) = app.create_webhook("store-b", "https://b.example.com/hook", None).await;
        let (mine, secret) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        for (name, form) in [
            ("signature_material", vec![("id", theirs.as_str())]),
            ("check_signature", vec![("id", theirs.as_str()), ("headers", ""), ("body", "")]),
        ] {
            let (status, body) = app.server_fn(&cookie, name, &form).await;
            assert_eq!(status, 404, "{name}: {body}");
            assert!(!body.contains("whsec_"), "{name} leaked a secret");
        }
        let (status, body) = app.server_fn(&cookie, "signature_material", &[("id", mine.as_str())]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&secret));
        // Nothing pasted: the first missing header is named.
        let (status, body) = app.server_fn(&cookie, "check_signature", &[("id", mine.as_str()), ("headers", ""), ("body", "")]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("missing_header") && body.contains("webhook-id"), "{body}");
    }
}
