//! The dashboard's lists a page at a time, followed as a browser without JavaScript follows
//! them: the links carry the API's cursors, so every API key and webhook can be reached (and
//! a key revoked), and the stores page goes forward and back.

use hookline_core::Scope;

use crate::common::*;

/// The address the link with this id points to, as the browser reads it.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag = &html[html[..at].rfind('<')?..at + html[at..].find('>')?];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&amp;", "&"))
}

async fn page(app: &TestApp, cookie: &str, address: &str) -> String {
    let res = app.http.get(app.url(address)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), 200, "{address}");
    res.text().await.unwrap()
}

/// The rows of a list in a page's HTML, by their `data-…-id` attribute.
fn rows(html: &str, attribute: &str) -> usize {
    html.matches(&format!("{attribute}=\"")).count()
}

on_both_databases! {
    async fn an_api_key_past_the_first_250_is_revoked_from_its_page(backend: Backend) {
        let app = spawn(backend).await;
        let store = Scope::Store("store-a".into());
        // With the one key the test app made, store-a has 261 keys; the newest is the last.
        let mut newest = String::new();
        for i in 0..260 {
            newest = app.services.create_api_key(&store, &format!("Service {i:03}")).await.unwrap().id;
        }
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");

        let mut address = "/settings/api".to_string();
        let mut pages = 1;
        let mut html = page(&app, &cookie, &address).await;
        assert!(link(&html, "keys-previous").is_none());
        while !html.contains(&format!("data-key-id=\"{newest}\"")) {
            address = link(&html, "keys-next").unwrap_or_else(|| panic!("no page after {address}"));
            assert!(address.starts_with("/settings/api?keys="), "{address}");
            html = page(&app, &cookie, &address).await;
            pages += 1;
        }
        // 50 a page, as the API pages.
        assert_eq!(pages, 6);
        assert_eq!(rows(&html, "data-key-id"), 11);
        assert!(link(&html, "keys-next").is_none());

        // Its Revoke form, posted before the WebAssembly has loaded, comes back to this page.
        let res = app.http.post(app.url("/ui/revoke_api_key"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .header("referer", app.url(&address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("store=&id={}", enc(&newest)))
            .send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        assert_eq!(res.headers()["location"].to_str().unwrap(), app.url(&address));
        let mut html = page(&app, &cookie, &address).await;
        let row = &html[html.find(&format!("data-key-id=\"{newest}\"")).unwrap()..];
        assert!(row[..row.find("</tr>").unwrap()].contains("Revoked"));
        let (status, key) = app.api("GET", &format!("/api-keys/{newest}"), Some(&app.admin_key), None).await;
        assert_eq!(status, 200, "{key}");
        assert!(!key["revoked_at"].is_null(), "{key}");

        // "Previous" goes back one page at a time, to the first, which names no cursor.
        let mut back = pages;
        while let Some(previous) = link(&html, "keys-previous") {
            html = page(&app, &cookie, &previous).await;
            back -= 1;
            if back == 1 {
                assert_eq!(previous, "/settings/api");
            }
        }
        assert_eq!(back, 1);
        assert_eq!(rows(&html, "data-key-id"), 50);
    }

    async fn the_stores_page_goes_forward_and_back_a_page_at_a_time(backend: Backend) {
        let app = spawn(backend).await;
        for i in 0..60 {
            app.services.create_store(&format!("shop-{i:02}"), &format!("Shop {i:02}")).await.unwrap();
        }
        app.services.create_merchant("merchant@shop-59.test", PASSWORD, "shop-59").await.unwrap();
        app.services.create_admin("root@hookline.test", PASSWORD).await.unwrap();
        let cookie = app.sign_in("root@hookline.test", PASSWORD).await.expect("signed in");

        let first = page(&app, &cookie, "/admin/stores").await;
        assert_eq!(rows(&first, "data-store-id"), 50);
        assert!(first.contains("data-store-id=\"shop-00\""));
        assert!(!first.contains("data-store-id=\"shop-59\""));
        assert!(link(&first, "stores-previous").is_none());

        let next = link(&first, "stores-next").expect("a next page");
        assert!(next.starts_with("/admin/stores?stores="), "{next}");
        let second = page(&app, &cookie, &next).await;
        // 62 stores with store-a and store-b: the last 12, each with its users.
        assert_eq!(rows(&second, "data-store-id"), 12);
        let row = &second[second.find("data-store-id=\"shop-59\"").unwrap()..];
        assert!(row[..row.find("</tr>").unwrap()].contains("merchant@shop-59.test"));
        assert!(link(&second, "stores-next").is_none());
        assert_eq!(link(&second, "stores-previous").as_deref(), Some("/admin/stores"));
    }
    async fn a_stores_webhooks_past_the_first_page_are_on_the_next(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_MAX_WEBHOOKS_PER_TENANT", "60")]).await;
        let mut newest = String::new();
        for i in 0..55 {
            newest = app.create_webhook("store-a", &format!("https://a.example.com/hook/{i:02}"), None).await.0;
        }
        let cookie = app.sign_in("merchant@a.test", PASSWORD).await.expect("signed in");

        let first = page(&app, &cookie, "/settings/api").await;
        assert_eq!(rows(&first, "data-webhook-id"), 50);
        assert!(!first.contains(&format!("data-webhook-id=\"{newest}\"")));
        let next = link(&first, "webhooks-next").expect("a next page");
        assert!(next.starts_with("/settings/api?webhooks="), "{next}");

        let second = page(&app, &cookie, &next).await;
        assert_eq!(rows(&second, "data-webhook-id"), 5);
        assert!(second.contains(&format!("data-webhook-id=\"{newest}\"")));
        assert!(link(&second, "webhooks-next").is_none());
        assert_eq!(link(&second, "webhooks-previous").as_deref(), Some("/settings/api"));
    }
}
