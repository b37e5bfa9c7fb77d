//! The dashboard's sign-in and its server functions: sessions, and tenant isolation through
//! the same functions the browser calls.

use crate::common::*;

on_both_databases! {
    async fn a_wrong_password_or_unknown_email_does_not_sign_in(backend: Backend) {
        let app = spawn(backend).await;
        assert!(app.sign_in("merchant@a.test", "wrong password!").await.is_none());
        assert!(app.sign_in("nobody@a.test", PASSWORD).await.is_none());
        let res = app.http.post(app.url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=merchant%40a.test&password=nope")
            .send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.text().await.unwrap().contains("do not match"));
        // The right password does, and the cookie is HttpOnly and SameSite=Lax.
        let res = app.http.post(app.url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email=merchant%40a.test&password={}", enc(PASSWORD)))
            .send().await.unwrap();
        let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http must not get a Secure cookie: {cookie}");
    }

    async fn a_server_function_called_with_bad_arguments_answers_400(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        for (name, form) in [
            ("deliveries", vec![("id", "wrong-name")]),
            ("toggle_webhook", vec![("id", "x"), ("enabled", "maybe")]),
            ("create_api_key", vec![]),
        ] {
            let (status, body) = app.server_fn(&cookie, name, &form).await;
            assert_eq!(status, 400, "{name}: {body}");
            assert!(body.contains("arguments"), "{name}: {body}");
        }
    }

    async fn signing_out_ends_the_session(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        let (status, _) = app.server_fn(&cookie, "viewer", &[]).await;
        assert_eq!(status, 200);
        let (status, _) = app.server_fn(&cookie, "logout", &[]).await;
        assert!(status < 400);
        let (status, _) = app.server_fn(&cookie, "viewer", &[]).await;
        assert_eq!(status, 401);
        let (status, _) = app.server_fn("hookline_session=forged", "viewer", &[]).await;
        assert_eq!(status, 401);
    }

    async fn a_merchant_cannot_read_or_change_another_stores_webhook(backend: Backend) {
        let app = spawn(backend).await;
        let (theirs, _) = app.create_webhook("store-b", "https://b.example.com/hook", None).await;
        let (mine, _) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");

        for (name, form) in [
            ("webhook", vec![("id", theirs.as_str())]),
            ("toggle_webhook", vec![("id", theirs.as_str()), ("enabled", "false")]),
            ("reveal_secret", vec![("id", theirs.as_str())]),
            ("deliveries", vec![("webhook_id", theirs.as_str())]),
        ] {
            let (status, body) = app.server_fn(&cookie, name, &form).await;
            assert_eq!(status, 404, "{name}: {body}");
            assert!(!body.contains("whsec_"), "{name} leaked a secret");
        }
        // Its own webhook works through the same functions.
        let (status, body) = app.server_fn(&cookie, "reveal_secret", &[("id", mine.as_str())]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("whsec_"));
        // And the other store's webhook is untouched.
        let (_, hook) = app.api("GET", &format!("/webhooks/{theirs}"), Some(&app.admin_key), None).await;
        assert_eq!(hook["enabled"], true);

        // The page itself, opened by editing the address bar, is a not-found page.
        let res = app.http.get(app.url(&format!("/settings/api/webhooks/{theirs}"))).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let html = res.text().await.unwrap();
        assert!(html.contains("Webhook not found"));
        assert!(!html.contains("b.example.com"));
    }

    async fn the_settings_page_lists_only_the_merchants_webhooks_escaped(backend: Backend) {
        let app = spawn(backend).await;
        let (status, body) = app.api("POST", "/webhooks", Some(&app.store_a_key), Some(serde_json::json!({
            "url": "https://a.example.com/hook?x=1&y=2",
            "description": "<script>alert(1)</script>",
        }))).await;
        assert_eq!(status, 201, "{body}");
        app.create_webhook("store-b", "https://b.example.com/other", None).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let res = app.http.get(app.url("/settings/api")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("a.example.com/hook"));
        assert!(!html.contains("b.example.com"));
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Add"));
    }

    async fn creating_a_webhook_from_the_form_validates_the_url(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        let (status, body) = app.server_fn(&cookie, "create_webhook", &[("url", "http://example.com/hook")]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("must start with https://"), "{body}");
        assert_eq!(app.counts().await.3, 0);
        let (status, body) = app.server_fn(&cookie, "create_webhook", &[
            ("url", "https://a.example.com/hook"),
            ("events", "selected"),
            ("event_types[0]", "review-created"),
            ("event_types[3]", "message-deleted"),
        ]).await;
        assert!(status < 400, "{status} {body}");
        let (_, list) = app.api("GET", "/webhooks", Some(&app.store_a_key), None).await;
        assert_eq!(list["items"][0]["event_types"], serde_json::json!(["message-deleted", "review-created"]));
    }

    async fn delivery_history_totals_are_exact_below_the_window_and_bounded_above_it(backend: Backend) {
        use hookline_core::entities::delivery;
        use hookline_core::{DeliveryFilter, PageRequest, Scope, TOTALS_WINDOW};
        use sea_orm::{ActiveValue::Set, EntityTrait};
        let app = spawn(backend).await;
        // Oldest first (ids sort by time): 10,000 succeeded for store-a, then 30 failed for
        // store-a and 20 pending for store-b.
        let row = |i: usize, store: &str, status: &str| delivery::ActiveModel {
            id: Set(format!("d-{i:06}")),
            event_id: Set(format!("e-{i:06}")),
            webhook_id: Set(format!("wh-{store}")),
            tenant_type: Set(hookline_core::TenantType::Store),
            tenant_id: Set(store.into()),
            event_type: Set("review-created".into()),
            status: Set(status.parse().expect("a delivery status")),
            attempts: Set(1),
            manual_attempts: Set(0),
            next_attempt_at: Set(None),
            leased_by: Set(None),
            last_status_code: Set(None),
            last_duration_ms: Set(None),
            created_at: Set(i as i64),
            updated_at: Set(i as i64),
            ..Default::default()
        };
        let mut rows: Vec<_> = (0..10_000).map(|i| row(i, "store-a", "succeeded")).collect();
        rows.extend((10_000..10_030).map(|i| row(i, "store-a", "failed")));
        rows.extend((10_030..10_050).map(|i| row(i, "store-b", "skipped")));
        for chunk in rows.chunks(500) {
            delivery::Entity::insert_many(chunk.to_vec()).exec_without_returning(app.services.database()).await.unwrap();
        }
        let page = PageRequest { limit: Some(50), cursor: None };
        let search = |filter: DeliveryFilter| {
            let (services, page) = (app.services.clone(), page.clone());
            async move { services.search_deliveries(&Scope::Admin, &filter, &page).await.unwrap().1 }
        };
        let all = search(DeliveryFilter::default()).await;
        assert!(all.capped);
        let counted: u64 = all.by_status.iter().map(|(_, n)| n).sum();
        assert_eq!(counted, TOTALS_WINDOW);
        // The latest are counted: every failure and skip, and the rest of the window.
        assert_eq!(
            all.by_status,
            vec![("succeeded".into(), 9_950), ("failed".into(), 30), ("skipped".into(), 20)]
        );
        let b = search(DeliveryFilter { store: Some("store-b".into()), ..Default::default() }).await;
        assert!(!b.capped);
        assert_eq!(b.by_status, vec![("skipped".to_string(), 20)]);
        // A time range counts what falls in it; the status filter narrows the list, not the
        // totals, so every status of the range stays visible.
        let failed = search(DeliveryFilter {
            store: Some("store-a".into()),
            from: Some(10_000),
            status: Some("succeeded".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(failed.by_status, vec![("failed".to_string(), 30)]);
        // A merchant has no cross-store history.
        let merchant = Scope::parse("store:store-a").unwrap();
        assert!(app.services.search_deliveries(&merchant, &DeliveryFilter::default(), &page).await.is_err());
    }

    async fn a_key_created_by_a_plain_form_post_is_shown_once_on_the_page_after_it(backend: Backend) {
        let app = spawn(backend).await;
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
        // As a browser posts the form before the WebAssembly has loaded.
        let res = app.http.post(app.url("/ui/create_api_key"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("referer", app.url("/settings/api"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Plain+form")
            .send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let page = |cookie: String| {
            let (http, url) = (app.http.clone(), app.url("/settings/api"));
            async move { http.get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
        };
        let first = page(cookie.clone()).await;
        let banner = first.find("id=\"new-api-key\"").expect("the new key is on the page");
        let start = banner + first[banner..].find("hkl_").unwrap();
        let key: String = first[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        let (status, _) = app.api("GET", "/webhooks", Some(&key), None).await;
        assert_eq!(status, 200, "the key shown works");
        let again = page(cookie.clone()).await;
        assert!(!again.contains(&key), "a key is shown once");
        assert!(again.contains("Plain form"));
        // With JavaScript the key comes back in the answer, and nothing waits in the session.
        let (status, body) = app.server_fn(&cookie, "create_api_key", &[("name", "With JS")]).await;
        assert_eq!(status, 200);
        assert!(body.contains("hkl_"));
        assert!(!page(cookie).await.contains("new-api-key"));
    }

    async fn pages_need_a_session(backend: Backend) {
        let app = spawn(backend).await;
        let (status, _) = app.server_fn("", "webhooks", &[]).await;
        assert_eq!(status, 401);
        let res = app.http.get(app.url("/login")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Sign in"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_is_secure_behind_https() {
    let app = spawn(Backend::Sqlite).await;
    let res = app
        .http
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(format!("email=merchant%40a.test&password={}", enc(PASSWORD)))
        .send()
        .await
        .unwrap();
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let dir = TempDir::new();
    let url = fresh_database(Backend::Sqlite, &dir).await;
    let db = hookline_core::connect(&url).await.unwrap();
    hookline_core::migrate(&db).await.unwrap();
    let settings =
        hookline_core::Settings { session_ttl: std::time::Duration::from_millis(50), ..Default::default() };
    let services = hookline_core::Services::new(db, settings);
    let user = services.create_admin("ops@example.com", PASSWORD).await.unwrap();
    let token = services.create_session(&user.id).await.unwrap();
    assert!(services.session_user(&token).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    assert!(services.session_user(&token).await.unwrap().is_none());
}

/// A page renders while other Hookline applications start in the same process. Leptos's route
/// listing holds a process-wide switch that parks every resource first polled meanwhile for
/// good; a page that waits for its data (`SsrMode::Async`) then answered nothing until the
/// request's time limit. The routes are listed once per process, so a second start does not
/// touch the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_applications_start_in_the_process() {
    let app = spawn(Backend::Sqlite).await;
    let (hook, _) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
    let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");
    let starting = tokio::spawn(async {
        for _ in 0..20 {
            let dir = TempDir::new();
            let url = fresh_database(Backend::Sqlite, &dir).await;
            let other = hookline::Application::build(test_config(&url, &[("HOOKLINE_WORKERS", "false")]))
                .await
                .expect("another Hookline starts");
            drop(other);
        }
    });
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().unwrap();
    // Three readers, each a page at a time, until the starts are over.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (http, cookie, pages) = (
                http.clone(),
                cookie.clone(),
                [format!("/settings/api/webhooks/{hook}"), "/settings/api".to_string()],
            );
            let base = app.url("");
            let starting = starting.abort_handle();
            tokio::spawn(async move {
                let mut read = 0;
                while !starting.is_finished() {
                    for path in &pages {
                        let res = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await;
                        let res = res.unwrap_or_else(|e| panic!("{path} after {read} pages: {e}"));
                        assert_eq!(res.status(), 200, "{path} after {read} pages");
                        read += 1;
                    }
                }
                read
            })
        })
        .collect();
    let mut pages = 0;
    for reader in readers {
        pages += reader.await.unwrap();
    }
    starting.await.unwrap();
    assert!(pages > 0);
}
