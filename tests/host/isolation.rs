use serde_json::json;
use sse_tests::*;

#[tokio::test]
async fn a_company_never_sees_another_companys_events() {
    let host = TestHost::start().await;
    let mut acme = host.stream("acme", &["dashboard-updates"]).await;
    acme.next_event().await;
    // Similar names and case variants are different tenants.
    for other in ["ACME", "Acme", "acme-corp", "acme_", "acm", "globex"] {
        host.publish(other, "dashboard-updates", "dashboard-update", json!({"for": other}))
            .await;
    }
    let mine = host
        .publish("acme", "dashboard-updates", "dashboard-update", json!({"for": "acme"}))
        .await;
    let e = acme.next_event().await;
    assert_eq!(e.id, Some(mine), "the first event acme sees is its own");
    assert_eq!(e.json()["for"], "acme");
}

#[tokio::test]
async fn a_token_for_one_company_cannot_open_another() {
    let host = TestHost::start().await;
    for target in ["globex", "ACME", "acme-corp"] {
        let res = host
            .open_stream(&token("acme", "VIEWER"), target, &["dashboard-updates"], None)
            .await;
        assert_eq!(res.status(), 403, "{target}");
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "FORBIDDEN");
    }
}

#[tokio::test]
async fn super_admin_may_watch_any_company() {
    let host = TestHost::start().await;
    let mut s = host
        .stream_as(
            &token("platform", "SUPER_ADMIN"),
            "globex",
            &["dashboard-updates"],
            None,
        )
        .await;
    s.next_event().await;
    let id = host
        .publish("globex", "dashboard-updates", "dashboard-update", json!(1))
        .await;
    assert_eq!(s.next_event().await.id, Some(id));
}

#[tokio::test]
async fn channel_whitelist_and_channel_roles_are_enforced() {
    let host = TestHost::start().await;
    let viewer = token("acme", "VIEWER");
    let res = host.open_stream(&viewer, "acme", &["secret-stuff"], None).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "INVALID_CHANNEL"
    );
    let res = host.open_stream(&viewer, "acme", &["audit-log"], None).await;
    assert_eq!(res.status(), 403);
    let auditor = token("acme", "AUDITOR");
    let mut s = host.stream_as(&auditor, "acme", &["audit-log"], None).await;
    assert_eq!(s.next_event().await.event, "connected");
}
