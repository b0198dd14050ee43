//! Configuration files: the shipped example is valid, and bad files list every problem.

use sse_host::{EdgeMode, FileConfig};

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/config/host.example.toml")
}

/// `sse-host check-config` on the shipped example with `env` set: (exit code, stderr).
fn check_example(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(sse_tests::node::host_bin())
        .arg("check-config")
        .arg(example())
        .env_remove("SSE_JWT_SECRET")
        .env_remove("SSE_EDGE_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run sse-host");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_shipped_example_runs_only_with_secrets_from_the_environment() {
    let (code, stderr) = check_example(&[]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("SSE_JWT_SECRET") && stderr.contains("SSE_EDGE_SECRET"),
        "{stderr}"
    );
    let (code, stderr) = check_example(&[("SSE_JWT_SECRET", "tiny-jwt-secret"), ("SSE_EDGE_SECRET", "tiny-edge")]);
    assert_eq!(code, Some(78), "short secrets: {stderr}");
    assert!(
        stderr.contains("jwt.hmac_secret") && stderr.contains("edge.secret"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tiny-"),
        "a refused secret is not echoed either: {stderr}"
    );
    let jwt = "jwt-secret-from-the-environment-0123456789";
    let edge = "edge-secret-from-the-environment-\"quoted\"-0123";
    let (code, stderr) = check_example(&[("SSE_JWT_SECRET", jwt), ("SSE_EDGE_SECRET", edge)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains(jwt) && !stderr.contains("from-the-environment"),
        "secrets are never echoed: {stderr}"
    );
    // The same file, parsed in-process with its secrets given, is the documented config.
    let policy = std::fs::read_to_string(example().with_file_name("policy.example.json"))
        .unwrap()
        .replace("${SSE_JWT_SECRET}", jwt)
        .replace("${SSE_EDGE_SECRET}", "edge-secret-from-the-environment-0123456789");
    let cfg = FileConfig::from_path(&example()).unwrap().build(Some(policy)).unwrap();
    assert_eq!(cfg.edge, EdgeMode::Native);
    assert_eq!(cfg.hub.history_size, 100);
    assert_eq!(cfg.stream.heartbeat.as_secs(), 30);
    assert_eq!(cfg.policy.channels.len(), 3);
}

#[test]
fn every_problem_of_a_bad_configuration_is_reported() {
    let text = r#"
        listen = "not an address"
        worker_threads = 5000
        [stream]
        heartbeat_secs = 0
        queue_capacity = 0
        [poll]
        max_wait_secs = 1000
        [publish]
        rate_per_sec = 0.0
    "#;
    let err = FileConfig::from_toml(text)
        .unwrap()
        .build(None)
        .unwrap_err()
        .to_string();
    for field in [
        "listen",
        "policy_file",
        "stream.heartbeat_secs",
        "stream.queue_capacity",
        "poll.max_wait_secs",
        "publish.rate_per_sec",
        "worker_threads",
    ] {
        assert!(err.contains(field), "{field} not reported in: {err}");
    }
    let err = FileConfig::from_toml("listen = 1\nunknown = 2")
        .unwrap_err()
        .to_string();
    assert!(!err.is_empty());
}

#[test]
fn wasm_mode_without_a_built_filter_says_how_to_build_it() {
    let text = "edge = \"wasm\"\n[[wasm.plugins]]\npath = \"/nonexistent/filter.wasm\"\n";
    let policy = sse_tests::policy_json(false).to_string();
    let err = FileConfig::from_toml(text)
        .unwrap()
        .build(Some(policy))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugin/build.sh"), "{err}");
}

#[test]
fn the_redis_backend_is_configured_by_a_table_and_its_problems_are_listed() {
    use sse_host::config::BackendSettings;
    let policy = sse_tests::policy_json(false).to_string();
    let ok = "backend = \"redis\"\n[redis]\nurl = \"redis://10.0.0.5:6380\"\nlease_ttl_secs = 20\n";
    let cfg = FileConfig::from_toml(ok).unwrap().build(Some(policy.clone())).unwrap();
    let BackendSettings::Redis(r) = cfg.backend else {
        panic!("backend = redis gives the redis backend")
    };
    assert_eq!(
        (r.url.as_str(), r.lease_ttl.as_secs(), r.key_prefix.as_str()),
        ("redis://10.0.0.5:6380", 20, "sse")
    );
    let memory = FileConfig::from_toml("").unwrap().build(Some(policy.clone())).unwrap();
    assert!(
        matches!(memory.backend, BackendSettings::Memory),
        "memory is the default"
    );

    let bad =
        "backend = \"redis\"\n[redis]\nurl = \"http://x\"\nkey_prefix = \"a{b}\"\nlease_ttl_secs = 1\nblock_ms = 0\n";
    let err = FileConfig::from_toml(bad)
        .unwrap()
        .build(Some(policy))
        .unwrap_err()
        .to_string();
    for field in [
        "redis.url",
        "redis.key_prefix",
        "redis.lease_ttl_secs",
        "redis.block_ms",
    ] {
        assert!(err.contains(field), "{field} not reported in: {err}");
    }
    assert!(
        FileConfig::from_toml("backend = \"etcd\"").is_err(),
        "unknown backends are refused"
    );
}

#[test]
fn redis_is_one_address_a_master_behind_sentinels_or_a_cluster_never_two_at_once() {
    use sse_host::config::BackendSettings;
    let policy = sse_tests::policy_json(false).to_string();
    let build = |redis: &str| {
        FileConfig::from_toml(&format!("backend = \"redis\"\n[redis]\n{redis}\n"))
            .unwrap()
            .build(Some(policy.clone()))
    };
    let redis = |redis: &str| match build(redis).unwrap().backend {
        BackendSettings::Redis(r) => r,
        BackendSettings::Memory => panic!("backend = redis"),
    };
    assert_eq!(redis("").url, "redis://127.0.0.1:6379", "the default address");
    let sentinel = redis("url = \"redis://:pw@mymaster/2\"\nsentinels = [\"redis://:spw@127.0.0.1:26379\"]");
    assert_eq!(sentinel.sentinels, ["redis://:spw@127.0.0.1:26379"]);
    assert_eq!(sentinel.url, "redis://:pw@mymaster/2", "the url names the master");
    let cluster = redis("cluster = [\"redis://127.0.0.1:7000\"]");
    assert_eq!(cluster.cluster, ["redis://127.0.0.1:7000"]);
    for (bad, field) in [
        (
            "sentinels = [\"redis://127.0.0.1:26379\"]",
            "redis.url: with redis.sentinels, name the master",
        ),
        (
            "url = \"redis://10.0.0.1\"\ncluster = [\"redis://127.0.0.1:7000\"]",
            "redis.url: not with redis.cluster",
        ),
        (
            "cluster = [\"redis://127.0.0.1:7000\"]\nsentinels = [\"redis://127.0.0.1:26379\"]",
            "redis.sentinels: not with redis.cluster",
        ),
        (
            "url = \"redis://m\"\nsentinels = [\"127.0.0.1:26379\"]",
            "redis.sentinels: every Sentinel must be",
        ),
        (
            "url = \"redis://m\"\nsentinels = [\"redis://127.0.0.1\"]",
            "redis.sentinels: every Sentinel must be",
        ),
        (
            "url = \"redis://m\"\nsentinels = [\"redis://127.0.0.1:26379/2\"]",
            "redis.sentinels: every Sentinel must be",
        ),
        (
            "url = \"redis://m:6380\"\nsentinels = [\"redis://127.0.0.1:26379\"]",
            "(no port)",
        ),
        ("url = \"rediss://10.0.0.1:6380\"", "redis.url: must be redis://"),
        ("url = \"redis://10.0.0.1:notaport\"", "redis.url: must be redis://"),
    ] {
        let err = build(bad).unwrap_err().to_string();
        assert!(err.contains(field), "{bad}: {field} not reported in: {err}");
    }
}

#[tokio::test]
async fn worker_threads_sets_how_many_threads_serve() {
    for setting in [1, 3] {
        let dir = sse_tests::node::write_config(None, "");
        let toml = dir.0.join("host.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        std::fs::write(&toml, format!("worker_threads = {setting}\n{text}")).unwrap();
        let log = dir.0.join("host.log");
        let mut child = std::process::Command::new(sse_tests::node::host_bin())
            .args(["serve", "--config"])
            .arg(&toml)
            .env("RUST_LOG", "info")
            .env_remove("TOKIO_WORKER_THREADS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sse-host");
        let addr = sse_tests::node::reported_address(&mut child).await;
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(addr.is_some(), "worker_threads = {setting}: no address; log:\n{log}");
        // The runtime's own count (tokio names blocking threads like workers, so
        // counting threads by name would not tell them apart).
        assert!(
            log.lines()
                .any(|l| l.ends_with(&format!("runtime built workers={setting}"))),
            "worker_threads = {setting}: log:\n{log}"
        );
    }
}
