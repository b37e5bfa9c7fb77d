//! The embeddable portal: who may ask for a one-time link, the link's ten minutes and single
//! opening, the session's end and revocation, the framing allow-list (its validation and the
//! `frame-ancestors` it puts on portal pages only), and what a portal session reaches: one
//! tenant's webhooks as the asking key sees them, nothing of another store's, nothing of
//! other applications' on the same store.

use hookline_core::{Scope, iso8601, now_ms};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::common::*;

/// Makes application `app-1` (installed on store-a when `installed`) and answers its key.
async fn application(app: &TestApp, installed: bool) -> String {
    let admin = Some(app.admin_key.as_str());
    let (status, _) =
        app.api("POST", "/applications", admin, Some(json!({"id": "app-1", "name": "Reviews"}))).await;
    assert_eq!(status, 201);
    if installed {
        let (status, body) = app
            .api("POST", "/applications/app-1/installations", admin, Some(json!({"store_id": "store-a"})))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    app.services.create_api_key(&Scope::Application("app-1".into()), "partner").await.unwrap().key
}

/// Asks for a portal link; answers the status and body.
async fn ask(app: &TestApp, key: &str, tenant: Value) -> (u16, Value) {
    app.api("POST", "/portal-sessions", Some(key), Some(tenant)).await
}

/// Opens a link as a browser would; answers the session token from the redirect.
async fn open(app: &TestApp, url: &str) -> String {
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "the link opens");
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let token =
        to.strip_prefix("/portal/").and_then(|r| r.strip_suffix("/webhooks")).expect("a session address");
    token.to_string()
}

/// A portal session for the tenant, asked with `key`: (session token, portal session id).
async fn session(app: &TestApp, key: &str, tenant: Value) -> (String, String) {
    let (status, body) = ask(app, key, tenant).await;
    assert_eq!(status, 201, "{body}");
    (open(app, body["url"].as_str().unwrap()).await, body["id"].as_str().unwrap().to_string())
}

/// Calls a portal server function with the session token, as the portal's forms do.
async fn portal_fn(app: &TestApp, name: &str, form: &[(&str, &str)]) -> (u16, String) {
    app.server_fn("", name, form).await
}

/// The webhook ids a portal session's list shows.
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let (status, body) = portal_fn(app, "portal_webhooks", &[("session", token)]).await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let mut ids: Vec<String> =
        list["webhooks"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

async fn make_webhook(app: &TestApp, key: &str, tenant: Option<(&str, &str)>, url: &str) -> String {
    let mut body = json!({"url": url});
    if let Some((kind, id)) = tenant {
        body["tenant_type"] = kind.into();
        body["tenant_id"] = id.into();
    }
    let (status, made) = app.api("POST", "/webhooks", Some(key), Some(body)).await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_string()
}

async fn sql(app: &TestApp, statement: &str) {
    let db = app.services.database();
    db.execute_raw(Statement::from_string(db.get_database_backend(), statement.to_string())).await.unwrap();
}

on_both_databases! {
    async fn who_may_ask_for_a_portal_link(backend: Backend) {
        let app = spawn(backend).await;
        let store_a = json!({"tenant_type": "store", "tenant_id": "store-a"});
        let store_b = json!({"tenant_type": "store", "tenant_id": "store-b"});

        // An admin, for any store; the link is the server's own address, for ten minutes.
        let before = now_ms();
        let (status, body) = ask(&app, &app.admin_key, store_a.clone()).await;
        let after = now_ms();
        assert_eq!(status, 201, "{body}");
        assert!(body["url"].as_str().unwrap().starts_with(&app.url("/portal/start/")), "{body}");
        let expires = body["expires_at"].as_str().unwrap().to_string();
        assert!(iso8601(before + 600_000) <= expires && expires <= iso8601(after + 600_000), "{expires}");
        // With no tenant, an admin is told to name one.
        let (status, body) = ask(&app, &app.admin_key, json!({})).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("tenant_id")));
        let (status, body) =
            ask(&app, &app.admin_key, json!({"tenant_type": "store", "tenant_id": "nowhere"})).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("tenant_id")), "{body}");

        // A store's key: its own store (named or not), never another.
        assert_eq!(ask(&app, &app.store_a_key, json!({})).await.0, 201);
        assert_eq!(ask(&app, &app.store_a_key, store_a.clone()).await.0, 201);
        let (status, body) = ask(&app, &app.store_a_key, store_b.clone()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");

        // An application's key: itself, and a store only once the store installed it.
        let partner = application(&app, false).await;
        assert_eq!(ask(&app, &partner, json!({})).await.0, 201);
        assert_eq!(ask(&app, &partner, store_a.clone()).await.0, 403);
        let admin = Some(app.admin_key.as_str());
        app.api("POST", "/applications/app-1/installations", admin, Some(json!({"store_id": "store-a"}))).await;
        assert_eq!(ask(&app, &partner, store_a.clone()).await.0, 201);
        assert_eq!(ask(&app, &partner, store_b).await.0, 403);

        // No key at all.
        assert_eq!(app.api("POST", "/portal-sessions", None, Some(store_a)).await.0, 401);
    }

    async fn a_link_opens_once_and_only_within_ten_minutes(backend: Backend) {
        let app = spawn(backend).await;
        let (_, body) = ask(&app, &app.store_a_key, json!({})).await;
        let url = body["url"].as_str().unwrap().to_string();
        let token = open(&app, &url).await;
        assert_eq!(listed(&app, &token).await, Vec::<String>::new());
        // The session's bare address leads to its webhooks.
        let res = app.http.get(app.url(&format!("/portal/{token}"))).send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        assert_eq!(res.headers()["location"].to_str().unwrap(), format!("/portal/{token}/webhooks"));

        // A second opening fails with a page that says why.
        let res = app.http.get(&url).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 410);
        assert!(res.text().await.unwrap().contains("already opened"));

        // A link not opened within its ten minutes.
        let (_, body) = ask(&app, &app.store_a_key, json!({})).await;
        let id = body["id"].as_str().unwrap();
        sql(&app, &format!("UPDATE portal_sessions SET link_expires_at = {} WHERE id = '{id}'", now_ms() - 1)).await;
        let res = app.http.get(body["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 410);
        assert!(res.text().await.unwrap().contains("expired"));

        // A made-up link.
        let res = app.http.get(app.url("/portal/start/not-a-link")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 404);
    }

    async fn a_session_ends_after_its_hour_or_at_once_when_revoked(backend: Backend) {
        let app = spawn(backend).await;
        let (token, id) = session(&app, &app.store_a_key, json!({})).await;
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks"))).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains("session ends"));

        // Another store's key cannot end it, nor learn that it exists.
        let (status, _) = app.api("DELETE", &format!("/portal-sessions/{id}"), Some(&app.store_b_key), None).await;
        assert_eq!(status, 404);
        assert_eq!(portal_fn(&app, "portal_webhooks", &[("session", &token)]).await.0, 200);

        let (status, _) = app.api("DELETE", &format!("/portal-sessions/{id}"), Some(&app.store_a_key), None).await;
        assert_eq!(status, 204);
        assert_eq!(portal_fn(&app, "portal_webhooks", &[("session", &token)]).await.0, 410);
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks"))).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 410);
        assert!(page.text().await.unwrap().contains("This session has ended"));

        // The hour runs out.
        let (token, id) = session(&app, &app.admin_key, json!({"tenant_type": "store", "tenant_id": "store-a"})).await;
        let opened: Value = serde_json::from_str(&portal_fn(&app, "portal_info", &[("session", &token)]).await.1).unwrap();
        assert!(opened["ended"].is_null(), "{opened}");
        sql(&app, &format!("UPDATE portal_sessions SET session_expires_at = {} WHERE id = '{id}'", now_ms() - 1)).await;
        assert_eq!(portal_fn(&app, "portal_webhooks", &[("session", &token)]).await.0, 410);
        // An admin may end any portal session; an unknown id is not found.
        assert_eq!(app.api("DELETE", &format!("/portal-sessions/{id}"), Some(&app.admin_key), None).await.0, 204);
        assert_eq!(app.api("DELETE", "/portal-sessions/nope", Some(&app.admin_key), None).await.0, 404);
    }

    async fn the_framing_allow_list_takes_origins_only(backend: Backend) {
        let app = spawn(backend).await;
        let path = "/stores/store-a/portal-origins";
        let key = Some(app.store_a_key.as_str());
        assert_eq!(app.api("GET", path, key, None).await.1, json!({"origins": []}));
        for bad in [
            "partner.example",
            "https://partner.example/embed",
            "https://*.partner.example",
            "ftp://partner.example",
            "https://partner.example?x",
            "'self'",
            "https://a.example https://b.example",
        ] {
            let body = json!({"origins": ["https://ok.example", bad]});
            let (status, answer) = app.api("PUT", path, key, Some(body)).await;
            assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("origins")), "{bad}: {answer}");
        }
        let too_many: Vec<String> = (0..21).map(|i| format!("https://p{i}.example")).collect();
        assert_eq!(app.api("PUT", path, key, Some(json!({"origins": too_many}))).await.0, 422);
        // Nothing was kept of the refused lists.
        assert_eq!(app.api("GET", path, key, None).await.1, json!({"origins": []}));

        let body = json!({"origins": ["https://Partner.example:443", "http://127.0.0.1:4000", "https://partner.example"]});
        let (status, kept) = app.api("PUT", path, key, Some(body)).await;
        assert_eq!(status, 200, "{kept}");
        assert_eq!(kept, json!({"origins": ["http://127.0.0.1:4000", "https://partner.example"]}));
        assert_eq!(app.api("GET", path, key, None).await.1, kept);

        // Only the tenant's own key or an admin.
        let other = Some(app.store_b_key.as_str());
        assert_eq!(app.api("PUT", path, other, Some(json!({"origins": []}))).await.0, 403);
        assert_eq!(app.api("GET", path, other, None).await.0, 403);
        let admin = Some(app.admin_key.as_str());
        assert_eq!(app.api("GET", "/stores/nowhere/portal-origins", admin, None).await.0, 404);
        let partner = application(&app, true).await;
        assert_eq!(app.api("PUT", path, Some(&partner), Some(json!({"origins": []}))).await.0, 403);
        let (status, _) = app
            .api("PUT", "/applications/app-1/portal-origins", Some(&partner), Some(json!({"origins": ["https://reviews.example"]})))
            .await;
        assert_eq!(status, 200);
    }

    async fn only_portal_pages_may_be_framed_and_only_by_the_allow_list(backend: Backend) {
        let app = spawn(backend).await;
        let csp = |res: &reqwest::Response| {
            res.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
        };
        let xfo = |res: &reqwest::Response| res.headers().get("x-frame-options").map(|v| v.to_str().unwrap().to_string());

        // No allow-list yet: the portal cannot be framed either.
        let (token, _) = session(&app, &app.store_a_key, json!({})).await;
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks"))).send().await.unwrap();
        assert!(csp(&page).contains("frame-ancestors 'none'"), "{}", csp(&page));
        assert_eq!(xfo(&page).as_deref(), Some("DENY"));

        let body = json!({"origins": ["https://shop.example", "http://127.0.0.1:4000"]});
        app.api("PUT", "/stores/store-a/portal-origins", Some(&app.store_a_key), Some(body)).await;
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks"))).send().await.unwrap();
        assert!(
            csp(&page).contains("frame-ancestors http://127.0.0.1:4000 https://shop.example;"),
            "{}",
            csp(&page)
        );
        assert_eq!(xfo(&page), None);

        // Every other page keeps 'none', signed in or not, the portal's own address without a
        // session included.
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.unwrap();
        for path in ["/login", "/settings/api", "/portal/not-a-session/webhooks", "/docs/api"] {
            let res = app.http.get(app.url(path)).header("cookie", &cookie).send().await.unwrap();
            assert!(csp(&res).contains("frame-ancestors 'none'"), "{path}: {}", csp(&res));
            assert_eq!(xfo(&res).as_deref(), Some("DENY"), "{path}");
        }

        // Framed or not, the portal's forms are the dashboard's: a post from the partner's
        // origin is refused, one from the portal's own page (in the frame) goes through.
        let create = |origin: String| {
            let url = app.url("/ui/portal_create_webhook");
            let body = format!("session={token}&url={}&events=all", enc("http://127.0.0.1:9/framed"));
            let http = app.http.clone();
            async move {
                http.post(url)
                    .header("origin", origin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(create("https://shop.example".into()).await, 403);
        assert_eq!(create(format!("http://{}", app.addr)).await, 200);

        // An application's portal on a store is framed by the application's list, not the store's.
        let partner = application(&app, true).await;
        let body = json!({"origins": ["https://reviews.example"]});
        app.api("PUT", "/applications/app-1/portal-origins", Some(&partner), Some(body)).await;
        let (token, _) = session(&app, &partner, json!({"tenant_type": "store", "tenant_id": "store-a"})).await;
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks"))).send().await.unwrap();
        assert!(csp(&page).contains("frame-ancestors https://reviews.example;"), "{}", csp(&page));
    }

    async fn an_applications_portal_on_a_store_shows_only_its_own_webhooks(backend: Backend) {
        let app = spawn(backend).await;
        let partner = application(&app, true).await;
        let merchants = make_webhook(&app, &app.store_a_key, None, "http://127.0.0.1:9/merchant").await;
        let own = make_webhook(&app, &partner, Some(("store", "store-a")), "http://127.0.0.1:9/own").await;
        let on_itself = make_webhook(&app, &partner, None, "http://127.0.0.1:9/itself").await;
        let elsewhere = make_webhook(&app, &app.admin_key, Some(("store", "store-b")), "http://127.0.0.1:9/b").await;

        let (token, _) = session(&app, &partner, json!({"tenant_type": "store", "tenant_id": "store-a"})).await;
        assert_eq!(listed(&app, &token).await, vec![own.clone()]);
        for other in [&merchants, &on_itself, &elsewhere] {
            for name in ["portal_webhook", "portal_reveal_secret", "portal_rotate_secret", "portal_delete_webhook", "portal_send_test"] {
                let (status, _) = portal_fn(&app, name, &[("session", &token), ("id", other)]).await;
                assert_eq!(status, 404, "{name} of {other}");
            }
            let (status, _) = portal_fn(&app, "portal_deliveries", &[("session", &token), ("webhook_id", other)]).await;
            assert_eq!(status, 404);
        }
        assert_eq!(portal_fn(&app, "portal_webhook", &[("session", &token), ("id", &own)]).await.0, 200);
        let (status, secret) = portal_fn(&app, "portal_reveal_secret", &[("session", &token), ("id", &own)]).await;
        assert_eq!(status, 200);
        assert!(secret.contains("whsec_"));

        // What the portal creates is the application's, on the store.
        let (status, made) = portal_fn(
            &app,
            "portal_create_webhook",
            &[("session", &token), ("url", "http://127.0.0.1:9/new"), ("events", "all")],
        )
        .await;
        assert_eq!(status, 200, "{made}");
        let made: String = serde_json::from_str(&made).unwrap();
        let (_, hook) = app.api("GET", &format!("/webhooks/{made}"), Some(&app.admin_key), None).await;
        assert_eq!((hook["tenant_id"].as_str(), hook["application_id"].as_str()), (Some("store-a"), Some("app-1")));
        // Uninstalled, the application's portal on the store reaches nothing.
        app.api("DELETE", "/applications/app-1/installations/store-a", Some(&app.admin_key), None).await;
        assert_eq!(portal_fn(&app, "portal_webhooks", &[("session", &token)]).await.0, 404);
        assert_eq!(portal_fn(&app, "portal_webhook", &[("session", &token), ("id", &own)]).await.0, 404);
    }

    async fn a_stores_portal_never_reaches_another_stores_webhooks(backend: Backend) {
        let app = spawn(backend).await;
        let mine = make_webhook(&app, &app.store_a_key, None, "http://127.0.0.1:9/a").await;
        let theirs = make_webhook(&app, &app.store_b_key, None, "http://127.0.0.1:9/b").await;
        // Asked by an admin, the portal still acts as the store, never as the admin.
        let (token, _) = session(&app, &app.admin_key, json!({"tenant_type": "store", "tenant_id": "store-a"})).await;
        assert_eq!(listed(&app, &token).await, vec![mine.clone()]);
        for name in ["portal_webhook", "portal_reveal_secret", "portal_rotate_secret", "portal_delete_webhook", "portal_send_test"] {
            assert_eq!(portal_fn(&app, name, &[("session", &token), ("id", &theirs)]).await.0, 404, "{name}");
        }
        let form = [("session", token.as_str()), ("id", theirs.as_str()), ("enabled", "false")];
        assert_eq!(portal_fn(&app, "portal_switch_webhook", &form).await.0, 404);
        let form = [("session", token.as_str()), ("id", theirs.as_str()), ("url", "http://127.0.0.1:9/x")];
        assert_eq!(portal_fn(&app, "portal_update_webhook", &form).await.0, 404);
        let (_, hook) = app.api("GET", &format!("/webhooks/{theirs}"), Some(&app.store_b_key), None).await;
        assert_eq!((hook["url"].as_str(), hook["enabled"].as_bool()), (Some("http://127.0.0.1:9/b"), Some(true)));

        // The portal's pages answer a webhook of another store as not found.
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks/{theirs}"))).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 404);
        assert!(!page.text().await.unwrap().contains("127.0.0.1:9/b"));
        // A forged or absent session reaches nothing, with or without a dashboard cookie.
        let cookie = app.sign_in("merchant@b.test", PASSWORD).await.unwrap();
        let (status, _) = app.server_fn(&cookie, "portal_webhook", &[("session", "forged"), ("id", &theirs)]).await;
        assert_eq!(status, 410);
        // The session's own: its webhook's page.
        let page = app.http.get(app.url(&format!("/portal/{token}/webhooks/{mine}"))).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains("127.0.0.1:9/a"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_is_built_from_the_public_url() {
    let app = spawn_with(Backend::Sqlite, &[("HOOKLINE_PUBLIC_URL", "https://hooks.example/base/")]).await;
    let (status, body) = ask(&app, &app.store_a_key, json!({})).await;
    assert_eq!(status, 201);
    assert!(body["url"].as_str().unwrap().starts_with("https://hooks.example/base/portal/start/"), "{body}");
}
