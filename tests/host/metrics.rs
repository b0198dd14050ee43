//! `/metrics` a team can alert on: per-company series bounded to the top companies (off
//! by default: company IDs would become visible), resets by reason, and the shipped alert
//! rules and Grafana dashboard (`envoy/monitoring/`) checked against what the host exports.

use std::collections::BTreeSet;

use serde_json::json;
use sse_tests::*;

async fn scrape(host: &TestHost) -> String {
    host.metrics().await
}

/// The value of the sample `series` (name and labels as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn monitoring(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../envoy/monitoring")
        .join(file)
}

#[tokio::test]
async fn the_top_companies_get_their_own_series_and_the_rest_are_summed() {
    let mut cfg = config(false);
    cfg.metrics_top_companies = 2;
    let host = TestHost::start_with(cfg).await;
    let mut held = Vec::new();
    for (company, n) in [("alpha", 3), ("beta", 2), ("gamma", 1)] {
        for _ in 0..n {
            held.push(host.stream(company, &["dashboard-updates"]).await);
        }
    }
    host.publish("alpha", "dashboard-updates", "update", json!(1)).await;
    let text = scrape(&host).await;
    assert_eq!(
        sample(&text, "sse_company_connections{company=\"alpha\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(sample(&text, "sse_company_connections{company=\"beta\"}"), Some(2.0));
    assert_eq!(sample(&text, "sse_company_connections_other"), Some(1.0));
    assert!(!text.contains("gamma"), "only the top two have series");
    assert_eq!(
        sample(&text, "sse_company_published_total{company=\"alpha\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "sse_company_delivered_total{company=\"alpha\"}"),
        Some(3.0)
    );
}

#[tokio::test]
async fn by_default_no_company_is_named_in_metrics() {
    let host = TestHost::start().await;
    let _s = host.stream("secretco", &["dashboard-updates"]).await;
    host.publish("secretco", "dashboard-updates", "update", json!(1)).await;
    let text = scrape(&host).await;
    assert!(!text.contains("secretco"), "{text}");
    assert_eq!(sample(&text, "sse_company_connections_other"), Some(1.0));
}

#[tokio::test]
async fn resets_are_counted_by_reason() {
    let mut cfg = config(false);
    cfg.hub.history_size = 1;
    let host = TestHost::start_with(cfg).await;
    let first = host.publish("acme", "dashboard-updates", "update", json!(1)).await;
    for n in 2..=3 {
        host.publish("acme", "dashboard-updates", "update", json!(n)).await;
    }
    let viewer = token("acme", "VIEWER");
    for resume in [first.as_str(), "not-an-id"] {
        let mut s = host
            .stream_as(&viewer, "acme", &["dashboard-updates"], Some(resume))
            .await;
        assert_eq!(s.next_event().await.event, "connected");
        assert_eq!(s.next_event().await.event, "reset");
    }
    // A poll that cannot continue exactly counts as well.
    let since = format!("/sse/poll?companyId=acme&channel=dashboard-updates&since={first}");
    assert_eq!(host.get_json(&since, &viewer).await["reset"], true);
    let text = scrape(&host).await;
    assert_eq!(
        sample(&text, "sse_resets_by_reason_total{reason=\"too_old\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "sse_resets_by_reason_total{reason=\"unknown_id\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "sse_resets_by_reason_total{reason=\"slow_consumer\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "sse_resets_total"), Some(3.0));
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let promtool = require_binary("PROMTOOL", "promtool", "apt-get install -y prometheus");
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(monitoring(""))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn the_rules_and_the_dashboard_use_only_metrics_the_host_exports() {
    let mut cfg = config(false);
    cfg.metrics_top_companies = 1;
    let host = TestHost::start_with(cfg).await;
    let _s = host.stream("acme", &["dashboard-updates"]).await;
    let text = scrape(&host).await;
    // Every family is declared by a TYPE line, samples or not; counters' samples end in _total.
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("# TYPE ")?.split(' ');
            let (name, kind) = (f.next()?, f.next()?);
            Some(if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            })
        })
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring("grafana-dashboard.json")).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    let rules = std::fs::read_to_string(monitoring("alerts.yml")).unwrap();
    exprs.extend(
        rules
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:").map(str::to_owned)),
    );
    let mut used = BTreeSet::new();
    for e in &exprs {
        for (i, _) in e.match_indices("sse_") {
            let name: String = e[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    assert!(used.len() >= 10, "the files were read: {used:?}");
    // The Redis reader's series exist with the Redis backend only: tests/redis checks them.
    let missing: Vec<&String> = used
        .difference(&exported)
        .filter(|m| !m.starts_with("sse_redis_"))
        .collect();
    assert!(
        missing.is_empty(),
        "used but not exported: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
fn per_company_series_need_metrics_closed_to_tenants() {
    let policy = policy_json(false).to_string();
    let refused = sse_host::FileConfig::from_toml("metrics_top_companies = 5")
        .unwrap()
        .build(Some(policy.clone()))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("metrics_top_companies"), "{refused}");
    let behind_envoy = sse_host::FileConfig::from_toml("metrics_top_companies = 5\nedge = \"envoy\"").unwrap();
    assert!(behind_envoy.build(Some(policy.clone())).is_ok());
    let unset = sse_host::FileConfig::from_toml("metrics_token_env = \"SSE_TEST_UNSET_METRICS_TOKEN\"")
        .unwrap()
        .build(Some(policy))
        .unwrap_err()
        .to_string();
    assert!(unset.contains("SSE_TEST_UNSET_METRICS_TOKEN"), "{unset}");
}

#[tokio::test]
async fn a_metrics_token_closes_metrics_to_everyone_else() {
    let token = "metrics-token-that-is-at-least-32-bytes";
    let mut cfg = config(false);
    cfg.metrics_token = Some(sse_policy::Secret::new(token));
    let host = TestHost::start_with(cfg).await;
    let get = |auth: Option<String>| {
        let mut req = host.client.get(host.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some("Bearer wrong".into())).await.unwrap().status(), 401);
    // A tenant's valid JWT is not the metrics token.
    let tenant = format!("Bearer {}", sse_tests::token("acme", "SUPER_ADMIN"));
    assert_eq!(get(Some(tenant)).await.unwrap().status(), 401);
    let ok = get(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("sse_connections"));
}

#[tokio::test]
async fn the_refusals_the_alerts_watch_are_exported_from_the_start() {
    let host = TestHost::start().await;
    let text = scrape(&host).await;
    for reason in [
        "too_many_connections",
        "host_full",
        "rate_limited",
        "edge_failure",
        "store_unavailable",
    ] {
        let series = format!("sse_denied_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series} in:\n{text}");
    }
}
