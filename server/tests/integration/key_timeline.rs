//! An ordering key's timeline (`GET /api/v1/ordering-keys/{key}/events`) follows the tenant's
//! ordering counter, the number an ordered delivery is sent by, not `sequence` (which counts per
//! event type's resource): a key's events of two resources come in publish order. Events no
//! webhook with ordering on received have no number on record and follow, by time.

use hookline_core::entities::webhook;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::common::*;

async fn publish_keyed(app: &TestApp, event_type: &str, key: Option<&str>) -> String {
    let mut body =
        json!({"tenant_type": "store", "tenant_id": "store-a", "event_type": event_type, "payload": {}});
    if let Some(key) = key {
        body["ordering_key"] = key.into();
    }
    let (status, answer) = app.api("POST", "/events", Some(&app.admin_key), Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn set_ordering(app: &TestApp, id: &str, on: bool) {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Ordering, Expr::value(on))
        .filter(webhook::Column::Id.eq(id))
        .exec(app.services.database())
        .await
        .unwrap();
}

/// Every page of the key's timeline at `limit` a page: the events' ids and sequences.
async fn timeline(app: &TestApp, key: &str, limit: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/ordering-keys/{key}/events?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let (status, page) = app.api("GET", &path, Some(&app.store_a_key), None).await;
        assert_eq!(status, 200, "{page}");
        for e in page["items"].as_array().unwrap() {
            out.push((e["id"].as_str().unwrap().to_string(), e["sequence"].as_i64().unwrap()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
        assert!(out.len() < 100, "the pages end");
    }
}

on_both_databases! {
    async fn a_keys_timeline_follows_the_ordering_counter_across_event_types(backend: Backend) {
        let app = spawn_driven(backend).await;
        let (ordered, _) = app.create_webhook("store-a", "http://127.0.0.1:9/ordered", None).await;
        set_ordering(&app, &ordered, true).await;
        // Reviews are numbered ahead: the store's review sequence is at 5 before the key starts,
        // its sms sequence at 0.
        for _ in 0..5 {
            publish_keyed(&app, "review-created", None).await;
        }
        let review = publish_keyed(&app, "review-created", Some("order-1")).await; // review 6, ordering 1
        let sms = publish_keyed(&app, "communication.sms.subscribed.v1", Some("order-1")).await; // sms 1, ordering 2
        let review_again = publish_keyed(&app, "review-created", Some("order-1")).await; // review 7, ordering 3
        let published = vec![review.clone(), sms.clone(), review_again.clone()];

        let page = timeline(&app, "order-1", 50).await;
        let ids: Vec<String> = page.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, published, "publish order, not sequence order");
        let sequences: Vec<i64> = page.iter().map(|(_, s)| *s).collect();
        assert_eq!(sequences, vec![6, 1, 7], "the sequences alone would have put the sms event first");
        // Page by page, the same.
        let ids: Vec<String> = timeline(&app, "order-1", 1).await.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, published);
        // That is the order the ordered webhook delivers them in.
        let (_, answer) = app.api("GET", "/ordering-keys/order-1/events", Some(&app.store_a_key), None).await;
        let numbers: Vec<i64> = answer["items"].as_array().unwrap().iter()
            .map(|e| e["deliveries"].as_array().unwrap().iter().find(|d| d["webhook_id"] == ordered.as_str()).unwrap()["ordering_seq"].as_i64().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

        // With no webhook ordering them, a key's events have no number on record: by time.
        set_ordering(&app, &ordered, false).await;
        let late_review = publish_keyed(&app, "review-created", Some("order-2")).await; // review 8
        let late_sms = publish_keyed(&app, "communication.sms.subscribed.v1", Some("order-2")).await; // sms 2
        let ids: Vec<String> = timeline(&app, "order-2", 50).await.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![late_review.clone(), late_sms.clone()]);
        // On a key with both, the numbered come first, then the others by time, page by page too.
        let unnumbered = publish_keyed(&app, "communication.sms.subscribed.v1", Some("order-1")).await;
        let mut expected = published.clone();
        expected.push(unnumbered);
        for limit in [1, 2, 50] {
            let ids: Vec<String> = timeline(&app, "order-1", limit).await.into_iter().map(|(id, _)| id).collect();
            assert_eq!(ids, expected, "limit {limit}");
        }

        // A cursor this list did not answer (the old `sequence:id` form included) is refused.
        for bad in ["6:abc", "n:x:abc", "n:3:", "q:3:abc"] {
            let (status, body) = app.api("GET", &format!("/ordering-keys/order-1/events?cursor={}", enc(bad)), Some(&app.store_a_key), None).await;
            assert_eq!((status, body["error"]["field"].as_str()), (400, Some("cursor")), "{bad}: {body}");
        }
    }
}
