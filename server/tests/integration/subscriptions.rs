//! The three-step flow of the seeds: target, filter, subscription.

use std::time::Duration;

use serde_json::json;
use test_receiver::Receiver;

use crate::common::*;

on_both_databases! {
    async fn target_filter_and_subscription_deliver_like_a_webhook(backend: Backend) {
        let app = spawn(backend).await;
        let receiver = Receiver::start().await.unwrap();
        let key = app.store_a_key.clone();
        let (status, target) = app.api("POST", "/targets", Some(&key), Some(json!({"url": receiver.url("/cb")}))).await;
        assert_eq!(status, 201, "{target}");
        let (status, filter) = app.api("POST", "/filters", Some(&key), Some(json!({"events": ["communication.sms.subscribed.v1"]}))).await;
        assert_eq!(status, 201, "{filter}");
        let (status, sub) = app
            .api("POST", "/subscriptions", Some(&key), Some(json!({"target_id": target["id"], "filter_id": filter["id"]})))
            .await;
        assert_eq!(status, 201, "{sub}");
        assert_eq!(sub["url"], receiver.url("/cb"));
        assert_eq!(sub["events"], json!(["communication.sms.subscribed.v1"]));
        receiver.set_secret(sub["secret"].as_str().unwrap());

        app.publish("store-a", "communication.sms.subscribed.v1", json!({"event_name": "communication.sms.subscribed.v1"})).await;
        app.publish("store-a", "review-created", json!({})).await;
        let got = receiver.wait_for(1, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.received().len(), 1);
        assert!(got[0].verified);

        // The subscription is a webhook, and a webhook is a subscription.
        let id = sub["id"].as_str().unwrap();
        let (status, hook) = app.api("GET", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!(status, 200);
        assert_eq!(hook["url"], receiver.url("/cb"));
        let (made, _) = app.create_webhook("store-a", "https://dash.example.com/hook", None).await;
        let (_, subs) = app.api("GET", "/subscriptions", Some(&key), None).await;
        let ids: Vec<&str> = subs["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&id) && ids.contains(&made.as_str()), "{subs}");

        // Target and filter cannot go while the subscription uses them.
        let (status, err) = app.api("DELETE", &format!("/targets/{}", target["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(status, 409, "{err}");
        let (status, _) = app.api("DELETE", &format!("/filters/{}", filter["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(status, 409);
        let (status, _) = app.api("DELETE", &format!("/subscriptions/{id}"), Some(&key), None).await;
        assert_eq!(status, 204);
        let (status, _) = app.api("DELETE", &format!("/targets/{}", target["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(status, 204);
        let (status, _) = app.api("DELETE", &format!("/filters/{}", filter["id"].as_str().unwrap()), Some(&key), None).await;
        assert_eq!(status, 204);
    }

    async fn bad_targets_and_filters_are_refused_with_their_field(backend: Backend) {
        let app = spawn_with(backend, &[("HOOKLINE_ALLOW_NETWORKS", ""), ("HOOKLINE_ALLOW_HTTP", "false")]).await;
        let key = app.store_a_key.clone();
        for (url, expected) in [("http://example.com/", "https://"), ("https://10.0.0.1/", "private"), ("https://x.example.com/#a", "fragment")] {
            let (status, err) = app.api("POST", "/targets", Some(&key), Some(json!({"url": url}))).await;
            assert_eq!(status, 400, "{url}: {err}");
            assert_eq!(err["error"]["field"], "url");
            assert!(err["error"]["message"].as_str().unwrap().contains(expected), "{err}");
        }
        let (status, err) = app.api("POST", "/filters", Some(&key), Some(json!({"events": []}))).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["field"], "events");
        let (status, err) = app.api("POST", "/filters", Some(&key), Some(json!({"events": ["review-created", "review-exploded"]}))).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["field"], "events");
        let (status, _) = app.api("POST", "/filters", Some(&key), Some(json!({"events": "review-created"}))).await;
        assert_eq!(status, 400);
        let (status, err) = app
            .api("POST", "/subscriptions", Some(&key), Some(json!({"target_id": "nope", "filter_id": "nope"})))
            .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(app.counts().await.3, 0);
    }

    async fn another_stores_targets_and_filters_are_out_of_reach(backend: Backend) {
        let app = spawn(backend).await;
        let (_, target) = app.api("POST", "/targets", Some(&app.store_a_key), Some(json!({"url": "https://a.example.com/"}))).await;
        let (_, filter) = app.api("POST", "/filters", Some(&app.store_a_key), Some(json!({"events": ["review-created"]}))).await;
        let (tid, fid) = (target["id"].as_str().unwrap(), filter["id"].as_str().unwrap());
        let b = app.store_b_key.clone();
        for (method, path) in [("GET", format!("/targets/{tid}")), ("DELETE", format!("/targets/{tid}")), ("GET", format!("/filters/{fid}")), ("DELETE", format!("/filters/{fid}"))] {
            let (status, _) = app.api(method, &path, Some(&b), None).await;
            assert_eq!(status, 404, "{method} {path}");
        }
        let (status, _) = app.api("POST", "/subscriptions", Some(&b), Some(json!({"target_id": tid, "filter_id": fid}))).await;
        assert_eq!(status, 422);
        let (_, list) = app.api("GET", "/targets", Some(&b), None).await;
        assert_eq!(list["items"], json!([]));
        assert_eq!(app.counts().await.3, 0);
    }
}
