//! Test support: start a real host on a loopback port, mint tokens, read SSE streams.
//!
//! Helpers read like sentences: `let host = TestHost::start().await;`,
//! `let mut s = host.stream("acme", &["dashboard-updates"]).await;`.
#![allow(missing_docs, unreachable_pub)]

mod client;
pub mod envoy;
pub mod node;
pub mod proxy;
pub mod redis;
pub mod sse;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sse_host::{App, AppState, Broker, FileConfig, HostConfig};
use sse_policy::Secret;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::HostClient;
pub use sse::{Frame, SseEvent, SseStream};

pub const JWT_SECRET: &str = "integration-jwt-secret-32-bytes-long!!";
pub const EDGE_SECRET: &str = "integration-edge-secret-32-bytes-long!";
pub const ISSUER: &str = "https://idp.test";

/// How long any single awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The policy JSON used by test hosts; `dev_mode` toggles `/sse/test-broadcast`.
pub fn policy_json(dev_mode: bool) -> Value {
    json!({
        "jwt": {"issuers": [ISSUER], "audiences": ["sse"], "hmac_secret": JWT_SECRET},
        "channels": [
            {"name": "dashboard-updates"}, {"name": "evidence-updates"}, {"name": "report-updates"},
            {"name": "audit-log", "roles": ["AUDITOR"]}
        ],
        "limits": {"max_connections_per_company": 5},
        "routes": {"dev_mode": dev_mode},
        "edge": {"secret": EDGE_SECRET},
        "cors": {"allowed_origins": ["https://app.test"]}
    })
}

/// The test policy with tiers: acme may hold 3 streams (everyone else 2) and keeps 5
/// events per channel; tiny keeps 1 and may use dashboard-updates only; meter may
/// publish 2 events, then 1 per 1000 s.
pub fn tiered_policy() -> Value {
    let mut p = policy_json(false);
    p["limits"]["max_connections_per_company"] = json!(2);
    p["limits"]["tiers"] = json!({
        "enterprise": {"max_connections_per_company": 3, "history_size": 5},
        "small": {"history_size": 1, "channels": ["dashboard-updates"]},
        "metered": {"publish_rate_per_sec": 0.001, "publish_burst": 2}
    });
    p["limits"]["company_tiers"] = json!({"acme": "enterprise", "tiny": "small", "meter": "metered"});
    p
}

/// A config for a test host: loopback, port 0, the test policy, fast heartbeats off.
pub fn config(dev_mode: bool) -> HostConfig {
    build_config(&policy_json(dev_mode), dev_mode)
}

/// [`config`] (not dev mode) with another policy.
pub fn config_for(policy: &Value) -> HostConfig {
    build_config(policy, false)
}

fn build_config(policy: &Value, dev_mode: bool) -> HostConfig {
    let mut file = FileConfig {
        listen: "127.0.0.1:0".into(),
        dev: dev_mode, // a dev_mode policy runs only in dev mode (`serve --dev`)
        ..FileConfig::default()
    };
    file.publish.rate_per_sec = 1_000_000.0;
    file.publish.burst = 1_000_000.0;
    file.build(Some(policy.to_string())).expect("test config is valid")
}

/// Starts test hosts whose HTTP/1.1 streams hyper serves (`stream.http1_fast_path =
/// false`). Imported as `TestHost` over a test file, it runs that file's tests on the
/// other server (see `tests/host/main.rs`).
pub struct HyperOnlyHost;

impl HyperOnlyHost {
    pub async fn start() -> TestHost {
        Self::start_with(config(false)).await
    }

    pub async fn start_with(mut config: HostConfig) -> TestHost {
        config.stream.http1_fast_path = false;
        TestHost::start_with(config).await
    }
}

/// A token for `company` with `role`, valid for 10 minutes.
pub fn token(company: &str, role: &str) -> String {
    token_with(json!({"sub": "tester", "company_id": company, "role": role}), 600)
}

/// A token with extra claims (merged over the defaults) and a lifetime in seconds.
pub fn token_with(claims: Value, ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = json!({"iss": ISSUER, "aud": "sse", "iat": now, "exp": now + ttl_secs});
    for (k, v) in claims.as_object().expect("claims object") {
        c[k] = v.clone();
    }
    sse_policy::mint::hs256(&Secret::new(JWT_SECRET), &c)
}

/// A host running in this process on a loopback port.
pub struct TestHost {
    pub addr: SocketAddr,
    /// The host's broker: in-process publishing and stats, as an embedder sees them.
    pub broker: Broker,
    pub state: Arc<AppState>,
    /// The HTTP helpers (`host.stream(..)`, `host.publish(..)` through `Deref`).
    pub api: HostClient,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestHost {
    /// A host with the test policy (dev mode off).
    pub async fn start() -> Self {
        Self::start_with(config(false)).await
    }

    /// A host with a custom configuration.
    pub async fn start_with(config: HostConfig) -> Self {
        let app = App::bind(config).await.expect("bind 127.0.0.1:0");
        let (addr, broker, state) = (app.local_addr(), app.broker(), app.state());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        Self {
            api: HostClient::new(&format!("http://{addr}")),
            addr,
            broker,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Triggers graceful shutdown and waits for the host to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("host stops within the patience")
                .unwrap();
        }
    }
}

impl std::ops::Deref for TestHost {
    type Target = HostClient;
    fn deref(&self) -> &HostClient {
        &self.api
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The filter module built by `plugin/build.sh` (or `$SSE_FILTER_WASM`). Fails with the
/// command to run when it is missing.
pub fn filter_wasm() -> std::path::PathBuf {
    let path = std::env::var_os("SSE_FILTER_WASM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin/dist/sse_filter.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the filter with `plugin/build.sh` (tests/run.sh does it)",
        path.display()
    );
    path
}

/// Loads the built filter into an embedded edge with `vms` VMs and the test policy
/// (tweaked by `policy`).
pub fn filter_edge(
    vms: usize,
    policy: impl FnOnce(&mut Value),
) -> Result<sse_host::edge::WasmEdge, sse_host::edge::EdgeError> {
    filter_edge_with(vms, policy, Default::default())
}

/// [`filter_edge`] whose revocation callouts are answered from `revocations`, as the
/// host answers them.
pub fn filter_edge_with(
    vms: usize,
    policy: impl FnOnce(&mut Value),
    revocations: std::sync::Arc<sse_host::admin::revocations::RevocationStore>,
) -> Result<sse_host::edge::WasmEdge, sse_host::edge::EdgeError> {
    let mut json = policy_json(false);
    policy(&mut json);
    // A policy the filter refuses has no feed to answer: the load reports the refusal.
    let upstream = sse_policy::PolicyConfig::from_json(&json.to_string())
        .ok()
        .map(|p| sse_host::admin::feed::upstream(std::sync::Arc::new(p), revocations));
    let spec = sse_host::edge::PluginSpec {
        name: "sse-filter".into(),
        module: std::fs::read(filter_wasm()).expect("read the filter module"),
        configuration: json.to_string().into_bytes(),
        upstream,
    };
    sse_host::edge::WasmEdge::load(&sse_host::edge::WasmSettings {
        plugins: vec![spec],
        vms,
        limits: sse_host::edge::VmLimits::default(),
        cache_dir: sse_host::config::default_cache_dir(),
    })
}

/// A host with edge mode `wasm` running the built filter.
pub fn wasm_config() -> HostConfig {
    wasm_config_for(&policy_json(false))
}

/// [`wasm_config`] with another policy (given to the host and its filter alike).
pub fn wasm_config_for(policy: &Value) -> HostConfig {
    let mut file = FileConfig {
        listen: "127.0.0.1:0".into(),
        edge: sse_host::EdgeMode::Wasm,
        ..FileConfig::default()
    };
    file.wasm.plugins = vec![sse_host::config::WasmPluginFile {
        path: filter_wasm(),
        name: Some("sse-filter".into()),
        configuration_file: None,
    }];
    file.publish.rate_per_sec = 1_000_000.0;
    file.publish.burst = 1_000_000.0;
    file.wasm.vms = 2;
    file.build(Some(policy.to_string())).expect("wasm test config is valid")
}

/// A minimal proxy-wasm module in WAT: `configure` is the body of `proxy_on_configure`,
/// `request_headers` the body of `proxy_on_request_headers` (both return an i32), with
/// `proxy_get_header_map_value` (`$get`), `proxy_set_shared_data` (`$set`) and
/// `proxy_log` (`$log`) imported, plus any `imports`. Data: ":path" at 16, "x-loop" at 32.
pub fn wat_module(imports: &str, configure: &str, request_headers: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 16) ":path")
  (data (i32.const 32) "x-loop")
  (global $heap (mut i32) (i32.const 1024))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) {configure})
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) {request_headers})
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_done") (param i32) (result i32) i32.const 1)
  (func (export "proxy_on_delete") (param i32)))"#
    );
    wat::parse_str(wat).expect("test WAT is valid")
}

/// A request of a decision table: method, target, optional bearer token. A POST says its
/// body is JSON unless its target ends in `#text` (stripped before sending), which sends
/// it as `text/plain`, what a cross-site form could.
pub type Case = (&'static str, &'static str, Option<String>);

/// For each case: (status, error code, CORS granted) of the request from origin
/// `https://app.test` against `base`. Used to show two edges decide alike.
pub async fn decisions(client: &reqwest::Client, base: &str, cases: &[Case]) -> Vec<(u16, Option<String>, bool)> {
    let mut out = Vec::new();
    for (method, target, tok) in cases {
        let (target, content_type) = match target.strip_suffix("#text") {
            Some(t) => (t, "text/plain"),
            None => (*target, "application/json"),
        };
        let mut req = client
            .request(method.parse().expect("method"), format!("{base}{target}"))
            .header("origin", "https://app.test");
        if *method == "POST" {
            req = req.header("content-type", content_type).body("{}");
        }
        if let Some(t) = tok {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let cors = res.headers().get("access-control-allow-origin").is_some();
        let status = res.status().as_u16();
        let code = res
            .json::<Value>()
            .await
            .ok()
            .and_then(|b| b["error"].as_str().map(str::to_owned));
        out.push((status, code, cors));
    }
    out
}

/// The table of requests on which two edges must decide alike: no token, a bad token,
/// another company, a malformed company, an unknown and a role-restricted channel, poll,
/// stats as viewer and admin, publish as viewer and as text, test-broadcast outside dev
/// mode, an unknown route.
pub fn decision_cases() -> Vec<Case> {
    let viewer = || Some(token("acme", "VIEWER"));
    vec![
        ("GET", "/sse/stream?companyId=acme&channel=dashboard-updates", None),
        (
            "GET",
            "/sse/stream?companyId=acme&channel=dashboard-updates",
            Some("garbage".into()),
        ),
        (
            "GET",
            "/sse/stream?companyId=globex&channel=dashboard-updates",
            viewer(),
        ),
        ("GET", "/sse/stream?companyId=bad!&channel=dashboard-updates", viewer()),
        ("GET", "/sse/stream?companyId=acme&channel=nope", viewer()),
        ("GET", "/sse/stream?companyId=acme&channel=audit-log", viewer()),
        ("GET", "/sse/poll?companyId=acme&channel=dashboard-updates", viewer()),
        ("GET", "/sse/stats", viewer()),
        ("GET", "/sse/stats", Some(token("acme", "ADMIN"))),
        ("POST", "/sse/publish", viewer()),
        ("POST", "/sse/publish#text", Some(token("acme", "PUBLISHER"))),
        ("POST", "/sse/test-broadcast", None),
        ("GET", "/sse/nothing", viewer()),
    ]
}

/// Asserts that the edges at `a` and `b` answer every [`decision_cases`] request alike.
pub async fn assert_same_decisions(
    client: &reqwest::Client,
    a: std::net::SocketAddr,
    b: std::net::SocketAddr,
    label: &str,
) {
    let cases = decision_cases();
    let left = decisions(client, &format!("http://{a}"), &cases).await;
    let right = decisions(client, &format!("http://{b}"), &cases).await;
    for ((method, target, _), (x, y)) in cases.iter().zip(left.iter().zip(&right)) {
        assert_eq!(x, y, "{method} {target}: {label}");
    }
    let statuses: std::collections::BTreeSet<u16> = left.iter().map(|(s, _, _)| *s).collect();
    let expected: std::collections::BTreeSet<u16> = [200, 400, 401, 403, 404, 415].into();
    assert_eq!(statuses, expected, "the table exercises every kind of answer: {left:?}");
}

/// A program the tests run: `$env` when set, else `default` on PATH. Fails the test with
/// `install` (how to get it) when it does not answer `--version`.
pub fn require_binary(env: &str, default: &str, install: &str) -> std::path::PathBuf {
    let bin = std::env::var_os(env).map_or_else(|| std::path::PathBuf::from(default), std::path::PathBuf::from);
    let found = std::process::Command::new(&bin)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{} not found: install it with `{install}` (or set {env})",
        bin.display()
    );
    bin
}

/// True once something accepts connections on loopback `port`, polling for up to
/// [`PATIENCE`].
pub async fn wait_for_port(port: u16) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// A loopback port bound but not listening for as long as this lives: connecting to it
/// is refused, and no other process can take it meanwhile.
pub struct ClosedPort {
    pub port: u16,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self { port, _socket: socket }
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends signal `sig` (`STOP`, `CONT`, `KILL`) to process `pid` (a host, a Redis).
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

/// A loopback port that was free a moment ago, for processes that can neither bind
/// port 0 and report it nor be checked for who answers (the benchmark's nginx). It may
/// be taken before the process binds it: tests use port 0 instead (`Node`, `Envoy`,
/// `TestHost`) or check who answers (`RedisServer`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sse-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends, to `addr`, publishes that announce a 900 kB body and never send it, with a
/// forged token and with a viewer's; asserts each is refused on its headers (401/403)
/// without the edge waiting for the body.
pub async fn publishes_refused_before_their_body(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for auth in [
        "Bearer forged".to_owned(),
        format!("Bearer {}", token("acme", "VIEWER")),
    ] {
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /sse/publish HTTP/1.1\r\nhost: x\r\nauthorization: {auth}\r\n\
             content-type: application/json\r\ncontent-length: 900000\r\n\r\n"
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        tokio::time::timeout(PATIENCE, sock.read_exact(&mut buf))
            .await
            .expect("answered without the body")
            .unwrap();
        let status = String::from_utf8_lossy(&buf[9..12]).into_owned();
        assert!(status == "401" || status == "403", "{status}");
    }
}
