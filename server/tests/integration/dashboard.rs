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
