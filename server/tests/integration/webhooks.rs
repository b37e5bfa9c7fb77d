//! Webhooks over REST: URL validation with a message for each mistake, and tenant isolation.

use serde_json::json;

use crate::common::*;

on_both_databases! {
    async fn each_bad_url_gets_its_own_message_and_nothing_is_written(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_ALLOW_NETWORKS", ""), ("HOOKLINE_ALLOW_HTTP", "false")]).await;
        let long = format!("https://example.com/{}", "a".repeat(2050));
        let cases: Vec<(&str, &str)> = vec![
            ("", "Enter the URL"),
            ("http://example.com/hook", "must start with https://"),
            ("example.com/hook", "must start with https://"),
            ("https://example.com/a hook", "must not contain spaces"),
            ("https://example.com/hook#frag", "fragment"),
            ("https://example.com/{x}", "percent-encode"),
            ("https://127.0.0.1/hook", "127.0.0.1"),
            ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("https://10.1.2.3/hook", "private"),
            ("https://[::1]:8443/hook", "::1"),
            ("https://localhost/hook", "localhost"),
            (long.as_str(), "limit is 2048"),
        ];
        for (url, expected) in cases {
            let (status, body) = app
                .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": url})))
                .await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["error"]["field"], "url", "{url}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(expected), "{url}: {message}");
        }
        assert_eq!(app.counts().await.3, 0);
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://hooks.example.com/yotpo"})))
            .await;
        assert_eq!(status, 201, "{body}");
        assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
        assert_eq!(body["event_types"], serde_json::Value::Null);
        assert_eq!(body["enabled"], true);
    }

    async fn event_types_are_checked_against_the_catalog(backend: Backend) {
        let app = spawn(backend).await;
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://h.example.com/", "event_types": ["review-created", "nope"]})))
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://h.example.com/", "event_types": []})))
            .await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = app
            .api("POST", "/webhooks", Some(&app.store_a_key), Some(json!({"url": "https://h.example.com/", "event_types": ["review-created", "communication.sms.sent.v1"]})))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["event_types"], json!(["communication.sms.sent.v1", "review-created"]));
        assert_eq!(app.counts().await.3, 1);
    }

    async fn a_store_key_cannot_reach_another_stores_webhook(backend: Backend) {
        let app = spawn(backend).await;
        let (theirs, _) = app.create_webhook("store-b", "https://b.example.com/hook", None).await;
        let key = app.store_a_key.clone();
        for (method, path, body) in [
            ("GET", format!("/webhooks/{theirs}"), None),
            ("PATCH", format!("/webhooks/{theirs}"), Some(json!({"url": "https://evil.example.com/"}))),
            ("DELETE", format!("/webhooks/{theirs}"), None),
            ("POST", format!("/webhooks/{theirs}/toggle"), Some(json!({"enabled": false}))),
            ("POST", format!("/webhooks/{theirs}/rotate-secret"), None),
            ("GET", format!("/webhooks/{theirs}/deliveries"), None),
        ] {
            let (status, res) = app.api(method, &path, Some(&key), body).await;
            assert_eq!(status, 404, "{method} {path}: {res}");
        }
        let (status, _) = app.api("GET", "/webhooks?tenant_type=store&tenant_id=store-b", Some(&key), None).await;
        assert_eq!(status, 403);
        let (status, _) = app
            .api("POST", "/webhooks", Some(&key), Some(json!({"tenant_type": "store", "tenant_id": "store-b", "url": "https://x.example.com/"})))
            .await;
        assert_eq!(status, 403);
        // Nothing changed.
        let (status, hook) = app.api("GET", &format!("/webhooks/{theirs}"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 200);
        assert_eq!(hook["url"], "https://b.example.com/hook");
        assert_eq!(hook["enabled"], true);
        // Its own list holds only its own webhooks.
        let (_, mine) = app.api("GET", "/webhooks", Some(&key), None).await;
        assert_eq!(mine["items"], json!([]));
    }

    async fn webhooks_are_listed_by_cursor(backend: Backend) {
        let app = spawn(backend).await;
        for i in 0..5 {
            app.create_webhook("store-a", &format!("https://h{i}.example.com/"), None).await;
        }
        let mut seen = Vec::new();
        let mut path = "/webhooks?limit=2".to_string();
        loop {
            let (status, page) = app.api("GET", &path, Some(&app.store_a_key), None).await;
            assert_eq!(status, 200);
            for item in page["items"].as_array().unwrap() {
                seen.push(item["url"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/webhooks?limit=2&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, (0..5).map(|i| format!("https://h{i}.example.com/")).collect::<Vec<_>>());
    }

    async fn admin_creates_stores_and_nobody_else_does(backend: Backend) {
        let app = spawn(backend).await;
        let (status, _) = app.api("POST", "/stores", Some(&app.admin_key), Some(json!({"id": "store-c", "name": "Store C"}))).await;
        assert_eq!(status, 201);
        let (status, _) = app.api("POST", "/stores", Some(&app.admin_key), Some(json!({"id": "store-c", "name": "Again"}))).await;
        assert_eq!(status, 409);
        let (status, _) = app.api("POST", "/stores", Some(&app.store_a_key), Some(json!({"id": "store-d", "name": "D"}))).await;
        assert_eq!(status, 403);
        let (status, body) = app.api("POST", "/stores", Some(&app.admin_key), Some(json!({"id": "bad id!", "name": "D"}))).await;
        assert_eq!(status, 400, "{body}");
    }
}

on_both_databases! {
    async fn text_with_a_nul_character_is_refused_everywhere_without_a_500(backend: Backend) {
        // PostgreSQL text cannot hold U+0000. Every input that reaches the database must be
        // answered as bad input, never as a server error, and write nothing.
        let app = spawn(backend).await;
        let (hook, _) = app.create_webhook("store-a", "https://a.example.com/hook", None).await;
        let before = app.counts().await;
        let admin = Some(app.admin_key.as_str());
        let store = Some(app.store_a_key.as_str());
        let posts = [
            ("/webhooks", store, json!({"url": "https://a.example.com/x", "description": "a\u{0}b"})),
            ("/stores", admin, json!({"id": "nul-store", "name": "a\u{0}b"})),
            ("/applications", admin, json!({"id": "nul-app", "name": "a\u{0}b"})),
            ("/api-keys", store, json!({"name": "a\u{0}b"})),
            ("/events", store, json!({"event_type": "review\u{0}created", "payload": {}})),
            ("/event-types", admin, json!({"name": "x.nul\u{0}", "product": "Reviews", "tenant_types": ["store"]})),
            ("/targets", store, json!({"url": "https://a.example.com/\u{0}"})),
            ("/filters", store, json!({"events": ["review-created\u{0}"]})),
        ];
        for (path, key, body) in posts {
            let (status, answer) = app.api("POST", path, key, Some(body)).await;
            assert!((400..500).contains(&status), "POST {path}: {status} {answer}");
        }
        for path in [
            "/webhooks/a%00b".to_string(),
            "/webhooks?cursor=a%00b".to_string(),
            format!("/webhooks/{hook}/deliveries?event_type=a%00b"),
            format!("/webhooks/{hook}/deliveries?cursor=a%00b"),
            "/events/a%00b".to_string(),
            "/deliveries/a%00b".to_string(),
        ] {
            let (status, answer) = app.api("GET", &path, store, None).await;
            assert!((400..500).contains(&status), "GET {path}: {status} {answer}");
        }
        let (status, _) = app.api("PATCH", &format!("/webhooks/{hook}"), store, Some(json!({"description": "a\u{0}b"}))).await;
        assert!((400..500).contains(&status), "PATCH: {status}");

        // The dashboard's server functions, as a form without JavaScript posts them.
        assert!(app.sign_in("merchant\u{0}@a.test", PASSWORD).await.is_none());
        let res = app.http.post(app.url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={}&password=x", enc("a\u{0}@a.test")))
            .send().await.unwrap();
        assert!(res.status().as_u16() < 500, "login: {}", res.status());
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        for (name, form) in [
            ("create_webhook", vec![("url", "https://a.example.com/y"), ("description", "a\u{0}b")]),
            ("create_api_key", vec![("name", "a\u{0}b")]),
            ("webhook", vec![("id", "a\u{0}b")]),
            ("deliveries", vec![("webhook_id", hook.as_str()), ("event_type", "a\u{0}b")]),
            ("deliveries", vec![("webhook_id", hook.as_str()), ("cursor", "a\u{0}b")]),
        ] {
            let (status, body) = app.server_fn(&cookie, name, &form).await;
            assert!(status < 500, "{name}: {status} {body}");
        }
        assert_eq!(app.counts().await, before, "nothing was written");
    }
}
