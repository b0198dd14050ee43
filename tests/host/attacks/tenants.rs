//! One company never sees, starves or takes what is another's: stats, identities,
//! connection slots (streams, long polls, the embedded filter's counters).

use serde_json::{json, Value};
use sse_tests::*;

/// Opens a `beta-inc` stream and publishes to `beta-inc`, so the host holds numbers that
/// only `beta-inc` (and super-admins) may see.
async fn beta_is_busy(host: &TestHost) -> SseStream {
    let mut beta = host.stream("beta-inc", &["dashboard-updates"]).await;
    beta.next_event().await;
    host.publish(
        "beta-inc",
        "dashboard-updates",
        "dashboard-update",
        json!({"secret": 1}),
    )
    .await;
    beta.next_event().await;
    beta
}

fn assert_sees_nothing_of_beta(stats: &Value) {
    let text = stats.to_string();
    assert!(!text.contains("beta"), "another company's name leaked: {text}");
    assert_eq!(stats["totalConnections"], 0, "{text}");
    assert_eq!(stats["connectionsByChannel"], json!({}), "{text}");
    assert_eq!(stats["historySize"], 0, "{text}");
    assert_eq!(stats["counters"]["published"], 0, "{text}");
    assert_eq!(stats["counters"]["streamsOpened"], 0, "{text}");
    assert!(
        stats.get("backend").is_none(),
        "host internals are for super-admins: {text}"
    );
}

async fn admin_stats_are_tenant_scoped(host: &TestHost) {
    let _beta = beta_is_busy(host).await;
    assert_sees_nothing_of_beta(&host.company_stats("acme-corp").await);
    // acme-corp's own activity is what its admin sees.
    let mut acme = host.stream("acme-corp", &["report-updates"]).await;
    acme.next_event().await;
    host.publish("acme-corp", "report-updates", "report-ready", json!(1))
        .await;
    let mine = host.company_stats("acme-corp").await;
    assert_eq!(mine["totalConnections"], 1, "{mine}");
    assert_eq!(mine["connectionsByCompany"], json!({"acme-corp": 1}), "{mine}");
    assert_eq!(mine["connectionsByChannel"], json!({"report-updates": 1}), "{mine}");
    assert_eq!(mine["counters"]["published"], 1, "{mine}");
    // Only the super-admin role sees every company and the backend.
    let all = host.stats().await;
    assert_eq!(
        all["connectionsByCompany"],
        json!({"acme-corp": 1, "beta-inc": 1}),
        "{all}"
    );
    assert_eq!(all["counters"]["published"], 2, "{all}");
    assert_eq!(all["backend"]["kind"], "memory", "{all}");
}

#[tokio::test]
async fn an_admin_sees_only_its_own_company_in_stats() {
    admin_stats_are_tenant_scoped(&TestHost::start().await).await;
}

#[tokio::test]
async fn an_admin_sees_only_its_own_company_in_stats_through_the_embedded_edge() {
    admin_stats_are_tenant_scoped(&TestHost::start_with(wasm_config()).await).await;
}

#[tokio::test]
async fn an_admin_token_without_a_company_sees_nothing() {
    let host = TestHost::start().await;
    let _beta = beta_is_busy(&host).await;
    // An admin acts on its own company; a token naming none (or `*`) has no scope and
    // is refused before any numbers are read.
    for claims in [
        json!({"sub": "x", "role": "ADMIN"}),
        json!({"sub": "x", "role": "ADMIN", "company_id": "*"}),
    ] {
        let no_company = token_with(claims, 600);
        let (status, body) = host.get_status("/sse/stats", &no_company).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("INVALID_COMPANY_ID")));
        assert!(!body.to_string().contains("beta"));
    }
}

#[tokio::test]
async fn one_identity_in_every_mode_whatever_its_characters() {
    let native = TestHost::start().await;
    let wasm = TestHost::start_with(wasm_config()).await;
    let _beta = beta_is_busy(&wasm).await;
    let unicode = token_with(
        json!({"sub": "José 😀, x", "company_id": "acme", "role": "VIEWER"}),
        600,
    );
    for host in [&native, &wasm] {
        let res = host.open_stream(&unicode, "acme", &["dashboard-updates"], None).await;
        assert_eq!(res.status(), 200, "a non-ASCII sub streams on every edge");
    }
    // A role holding the edge's list separator never becomes two roles: the token is
    // refused (and the identity headers would encode it as one role anyway).
    let smuggler = token_with(
        json!({"sub": "s", "company_id": "acme", "roles": ["ADMIN", "x,SUPER_ADMIN"]}),
        600,
    );
    for host in [&native, &wasm] {
        let res = host
            .client
            .get(host.url("/sse/stats"))
            .bearer_auth(&smuggler)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let acme = wasm.company_stats("acme").await.to_string();
    assert!(!acme.contains("beta"), "{acme}");
}

#[tokio::test]
async fn long_polls_hold_connection_slots_like_streams() {
    let host = TestHost::start().await; // max_connections_per_company: 5
    let poll = |wait: u32| {
        let (client, url) = (
            host.client.clone(),
            host.url(&format!(
                "/sse/poll?companyId=acme&channel=dashboard-updates&wait={wait}"
            )),
        );
        async move {
            client
                .get(url)
                .bearer_auth(token("acme", "VIEWER"))
                .send()
                .await
                .unwrap()
        }
    };
    let waiting: Vec<_> = (0..5).map(|_| tokio::spawn(poll(30))).collect();
    host.wait_for_stats("five long polls to hold slots", |s| {
        s["connectionsByCompany"]["acme"] == 5
    })
    .await;
    let refused = poll(30).await;
    assert_eq!(refused.status(), 429, "a sixth waiter");
    assert_eq!(poll(0).await.status(), 200, "a poll that does not wait takes no slot");
    let res = host
        .open_stream(&token("acme", "VIEWER"), "acme", &["dashboard-updates"], None)
        .await;
    assert_eq!(res.status(), 429, "nor a stream");
    let id = host.publish("acme", "dashboard-updates", "x", json!(1)).await;
    for w in waiting {
        let body: Value = w.await.unwrap().json().await.unwrap();
        assert_eq!(body["events"][0]["id"], id.as_str());
    }
    host.wait_for_stats("the slots to come back", |s| s["totalConnections"] == 0)
        .await;
}

/// `company`'s slot count in the embedded filter's shared data.
fn filter_slots(host: &TestHost, company: &str) -> u32 {
    let edge = host.state.edge.as_ref().expect("a wasm edge");
    let shard = edge
        .shared_data(0, &sse_policy::slots::shard_key(company))
        .unwrap_or_default();
    sse_policy::slots::count(&shard, company)
}

#[tokio::test]
async fn filter_slots_stay_exact_when_a_vm_dies_under_live_streams() {
    let host = TestHost::start_with(wasm_config()).await; // 2 VMs, round robin
    let mut acme = Vec::new();
    for _ in 0..3 {
        let mut s = host.stream("acme", &["dashboard-updates"]).await;
        s.next_event().await;
        acme.push(s);
    }
    let mut beta = Vec::new();
    for _ in 0..2 {
        let mut s = host.stream("beta-inc", &["dashboard-updates"]).await;
        s.next_event().await;
        beta.push(s);
    }
    assert_eq!((filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")), (3, 2));
    // Both VMs hold streams of both companies; one dies as a trap would kill it.
    host.state.edge.as_ref().unwrap().replace_vm(0, 0);
    acme.pop();
    beta.clear();
    host.wait_for_stats("three streams to end", |s| s["totalConnections"] == 2)
        .await;
    assert_eq!(
        (filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")),
        (2, 0),
        "every company's count is its live streams"
    );
    // The edge still admits (a fresh VM) and counts new streams.
    let mut again = host.stream("beta-inc", &["dashboard-updates"]).await;
    again.next_event().await;
    assert_eq!(filter_slots(&host, "beta-inc"), 1);
    drop((acme, again));
    host.wait_for_stats("every stream to end", |s| s["totalConnections"] == 0)
        .await;
    assert_eq!((filter_slots(&host, "acme"), filter_slots(&host, "beta-inc")), (0, 0));
}
