//! `sse-bench`: our host against nginx+nchan on this machine, same client, same run.
//!
//! Run everything with `tests/bench/compare.sh` (builds, then runs this, ~5 minutes), or:
//! `cargo build --release -p sse-host -p sse-tests && plugin/build.sh && $CARGO_TARGET_DIR/release/sse-bench`
//!
//! Options: `--idle N` (15000), `--fanout M` (10000), `--events K` (100), `--rate R`
//! (100), `--seconds S` (5), `--storm C` (10000), `--behind B` (50), `--connects N`
//! (10000), `--ingress E` (20000 single-event publishes; 10x that in batches of 100),
//! `--tenants C --tenant-viewers V --tenant-rate R` (2000 companies x 5 viewers, 1000
//! publishes/s spread over them for `--seconds`), `--channels N --channel-rate R
//! --channel-seconds S` (100000 channels followed, 8 per stream, one subscriber each,
//! 1000 events/s spread over them for 10 s, on one Redis and on a Redis Cluster;
//! `--redis-readers N`, the host's `redis.readers`, 1),
//! `--skip nchan,floor,wasm,native,envoy,envoy-h2,redis,tls,channels` (any of them), `--json FILE`,
//! `--envoy-host-edge native` (the host behind Envoy checks tokens itself: for measuring
//! Envoy without the filter, `tests/bench/envoy-knobs.sh`), `--host-workers N` (our
//! host's `worker_threads`; 0, one per core, by default).
//!
//! Churn and soak instead of the comparison: `--soak SECS` (with `--soak-long N`, 5000
//! long-lived streams; `--soak-churn R`, 100 short-lived streams opened and aborted per
//! second; `--soak-rate E`, 200 events/s) runs `soak.rs` against the native edge, the
//! embedded wasm edge and Envoy (each unless `--skip`ped: `--skip native,wasm` soaks
//! through Envoy only), and exits non-zero when a check fails.
//!
//! Targets: nchan (memory store, 100-event history, 30 s pings, live-only first connect);
//! our host with the embedded wasm edge verifying an HS256 token on every connect; our
//! host with the native edge (connect rate); our host behind Envoy with an HTTP/2 upstream
//! (memory per stream in the host and in Envoy, for HTTP/1.1 clients and for HTTP/2
//! clients with 100 streams per connection; connect rate); our host on Redis (fan-out);
//! and the floor of paced fan-out (`floor.rs`: one write per event per socket, nothing
//! else).
//! Every scenario is bounded in count and time and stays on loopback.

mod channels;
mod client;
mod floor;
mod h2;
mod host;
mod report;
mod scenarios;
mod soak;
mod target;
mod tls;

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Map, Value};

use host::{HostOptions, HostProcess, Nchan};
use target::{Flavor, Target};

pub(crate) struct Args {
    pub(crate) host_bin: PathBuf,
    idle: usize,
    fanout: usize,
    events: u64,
    rate: u64,
    seconds: u64,
    storm: usize,
    behind: u64,
    connects: usize,
    ingress: u64,
    tenants: usize,
    tenant_viewers: usize,
    tenant_rate: u64,
    pub(crate) channels: usize,
    pub(crate) channel_rate: u64,
    pub(crate) channel_seconds: u64,
    pub(crate) redis_readers: usize,
    envoy_host_edge: String,
    host_workers: usize,
    skip: Vec<String>,
    json: Option<PathBuf>,
    soak: soak::SoakArgs,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        host_bin: std::env::current_exe()?.with_file_name("sse-host"),
        idle: 15_000,
        fanout: 10_000,
        events: 100,
        rate: 100,
        seconds: 5,
        storm: 10_000,
        behind: 50,
        connects: 10_000,
        ingress: 20_000,
        tenants: 2000,
        tenant_viewers: 5,
        tenant_rate: 1000,
        channels: 100_000,
        channel_rate: 1000,
        channel_seconds: 10,
        redis_readers: 1,
        envoy_host_edge: "envoy".into(),
        host_workers: 0,
        skip: Vec::new(),
        json: None,
        soak: soak::SoakArgs {
            secs: 0,
            long: 5000,
            churn_per_sec: 100,
            rate: 200,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host-bin" => a.host_bin = val()?.into(),
            "--idle" => a.idle = val()?.parse()?,
            "--fanout" => a.fanout = val()?.parse()?,
            "--events" => a.events = val()?.parse()?,
            "--rate" => a.rate = val()?.parse()?,
            "--seconds" => a.seconds = val()?.parse()?,
            "--storm" => a.storm = val()?.parse()?,
            "--behind" => a.behind = val()?.parse()?,
            "--connects" => a.connects = val()?.parse()?,
            "--ingress" => a.ingress = val()?.parse()?,
            "--tenants" => a.tenants = val()?.parse()?,
            "--channels" => a.channels = val()?.parse()?,
            "--channel-rate" => a.channel_rate = val()?.parse()?,
            "--channel-seconds" => a.channel_seconds = val()?.parse()?,
            "--redis-readers" => a.redis_readers = val()?.parse()?,
            "--tenant-viewers" => a.tenant_viewers = val()?.parse()?,
            "--tenant-rate" => a.tenant_rate = val()?.parse()?,
            "--envoy-host-edge" => a.envoy_host_edge = val()?,
            "--host-workers" => a.host_workers = val()?.parse()?,
            "--skip" => a.skip = val()?.split(',').map(str::to_owned).collect(),
            "--json" => a.json = Some(val()?.into()),
            "--soak" => a.soak.secs = val()?.parse()?,
            "--soak-long" => a.soak.long = val()?.parse()?,
            "--soak-churn" => a.soak.churn_per_sec = val()?.parse()?,
            "--soak-rate" => a.soak.rate = val()?.parse()?,
            _ => anyhow::bail!("unknown option {flag}; see the doc comment of tests/bench/main.rs"),
        }
    }
    ensure!(a.behind < 100, "--behind must stay inside the 100-event history");
    ensure!(
        matches!(a.envoy_host_edge.as_str(), "envoy" | "native"),
        "--envoy-host-edge is envoy (the filter signs, the host checks) or native (the host checks tokens itself)"
    );
    ensure!(
        a.host_bin.exists(),
        "{} not found: build it with `cargo build --release -p sse-host`",
        a.host_bin.display()
    );
    Ok(a)
}

fn token(role: &str) -> String {
    token_for("bench", role)
}

/// A token of `company` with `role`, valid for an hour.
fn token_for(company: &str, role: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "bench", "company_id": company, "role": role, "exp": now + 3600});
    sse_policy::mint::hs256(&sse_policy::Secret::new(host::JWT_SECRET), &claims)
}

pub(crate) fn ours(name: &str, sub_addr: &str, pub_addr: &str, pids: Vec<u32>, front_pids: Vec<u32>) -> Target {
    Target {
        name: name.into(),
        flavor: Flavor::Ours,
        sub_addr: sub_addr.into(),
        pub_addr: pub_addr.into(),
        pids,
        front_pids,
        viewer: token("VIEWER"),
        publisher: token("PUBLISHER"),
        tls: None,
        company: "bench".into(),
        mint: Some(token_for),
        channels: vec!["dashboard-updates".into()],
    }
}

/// Idle, fan-out at max and fixed rate, reconnect storm, connect rate.
async fn full_suite(t: &Target, a: &Args, out: &mut Map<String, Value>) -> Result<()> {
    out.insert("idle".into(), scenarios::idle(t, a.idle).await?);
    out.insert(
        "fanout_max_rate".into(),
        scenarios::fanout(t, a.fanout, a.events, None, &[]).await?,
    );
    let fixed = scenarios::fanout(t, a.fanout.min(1000), a.rate * a.seconds, Some(a.rate), &[]).await?;
    out.insert("fanout_fixed_rate".into(), fixed);
    out.insert("storm".into(), scenarios::storm(t, a.storm, a.behind, &[]).await?);
    out.insert("connects".into(), scenarios::connect_rate(t, a.connects).await?);
    let per_company = (a.tenant_rate * a.seconds).div_ceil(a.tenants as u64).max(1);
    out.insert(
        "tenants".into(),
        scenarios::tenants(t, a.tenants, a.tenant_viewers, a.tenant_rate, per_company).await?,
    );
    out.insert("ingress".into(), scenarios::ingress(t, a.ingress, 32, 1).await?);
    if t.flavor == Flavor::Ours {
        out.insert(
            "ingress_batched".into(),
            scenarios::ingress(t, a.ingress * 10, 8, 100).await?,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = parse_args()?;
    let skip = |what: &str| a.skip.iter().any(|s| s == what);
    println!(
        "sse-bench: {} cores, loopback, load generator on the same machine",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut report = Map::new();
    if a.soak.secs > 0 {
        return soak_all(&a).await;
    }

    if !skip("nchan") {
        println!("nginx + nchan (2 workers, memory store)");
        let nchan = Nchan::start().await?;
        let t = Target {
            name: "nchan".into(),
            flavor: Flavor::Nchan,
            sub_addr: nchan.sub_addr.clone(),
            pub_addr: nchan.pub_addr.clone(),
            pids: nchan.pids(),
            front_pids: Vec::new(),
            viewer: String::new(),
            publisher: String::new(),
            tls: None,
            company: "bench".into(),
            mint: None,
            channels: Vec::new(),
        };
        let mut r = Map::new();
        full_suite(&t, &a, &mut r).await?;
        report.insert("nchan".into(), Value::Object(r));
    }

    if !skip("floor") {
        println!("the floor: one write per event per socket, nothing else");
        let paced = floor::paced(a.fanout.min(1000), a.rate * a.seconds, a.rate).await?;
        report.insert("floor".into(), json!({"paced": paced}));
    }

    let filter = sse_tests::filter_wasm();
    let opts = |edge| HostOptions {
        worker_threads: a.host_workers,
        ..HostOptions::plain(edge, &filter)
    };
    if !skip("wasm") {
        println!("sse-host, embedded wasm edge (HS256 verified on every connect)");
        let host = HostProcess::start(&a.host_bin, &opts("wasm")).await?;
        let t = ours("ours", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        let mut r = Map::new();
        full_suite(&t, &a, &mut r).await?;
        report.insert("ours".into(), Value::Object(r));
    }
    if !skip("native") {
        println!("sse-host, native edge");
        let host = HostProcess::start(&a.host_bin, &opts("native")).await?;
        let t = ours("native", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        let connects = scenarios::connect_rate(&t, a.connects).await?;
        let ingress = scenarios::ingress(&t, a.ingress, 32, 1).await?;
        report.insert("native".into(), json!({"connects": connects, "ingress": ingress}));
    }
    if !skip("envoy") {
        println!("sse-host behind Envoy (V8 filter, HTTP/2 upstream)");
        let host = HostProcess::start(&a.host_bin, &opts(&a.envoy_host_edge)).await?;
        let envoy = sse_tests::envoy::Envoy::start(host.addr.parse()?, &host::policy()).await;
        let front = envoy.addr.to_string();
        let t = ours("envoy", &front, &front, vec![host.pid()], vec![envoy.pid()]);
        let idle = scenarios::idle(&t, a.idle).await?;
        let connects = scenarios::connect_rate(&t, a.connects).await?;
        drop((envoy, host));
        let mut envoy_report = json!({"idle": idle, "connects": connects});
        if !skip("envoy-h2") {
            // Clients on HTTP/2 (h2c to the plain listener), on a fresh pair (Envoy's
            // allocator keeps what the HTTP/1.1 streams freed): 100 streams per
            // connection, the cap of Envoy's TLS listener that browsers use.
            let host = HostProcess::start(&a.host_bin, &opts(&a.envoy_host_edge)).await?;
            let envoy = sse_tests::envoy::Envoy::start(host.addr.parse()?, &host::policy()).await;
            let front = envoy.addr.to_string();
            let t = ours("envoy", &front, &front, vec![host.pid()], vec![envoy.pid()]);
            envoy_report["idle_h2"] = h2::idle(&t, a.idle, 100).await?;
        }
        report.insert("envoy".into(), envoy_report);
    }
    if !skip("tls") {
        report.insert("tls".into(), tls::suite(&a, &opts("native"), skip("envoy")).await?);
    }
    if !skip("redis") {
        println!("sse-host on Redis (redis-server on loopback, no persistence)");
        let redis = sse_tests::redis::RedisServer::start().await;
        let host = HostProcess::start(
            &a.host_bin,
            &HostOptions {
                redis_url: Some(&redis.url()),
                ..opts("native")
            },
        )
        .await?;
        let t = ours("redis", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        let store: Vec<u32> = redis.pid().into_iter().collect();
        let max = scenarios::fanout(&t, a.fanout, a.events, None, &store).await?;
        let fixed = scenarios::fanout(&t, a.fanout.min(1000), a.rate * a.seconds, Some(a.rate), &store).await?;
        let storm = scenarios::storm(&t, a.storm, a.behind, &store).await?;
        report.insert(
            "redis".into(),
            json!({"fanout_max_rate": max, "fanout_fixed_rate": fixed, "storm": storm}),
        );
    }

    if !skip("channels") {
        report.insert("channels".into(), channels::suite(&a).await?);
    }

    let report = Value::Object(report);
    report::print_table(&report);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The churn and soak run in each edge mode (`--soak`).
async fn soak_all(a: &Args) -> Result<()> {
    let filter = sse_tests::filter_wasm();
    let mut report = Map::new();
    for edge in ["native", "wasm", "envoy"] {
        if a.skip.iter().any(|s| s == edge) {
            continue;
        }
        println!("soak: sse-host, edge {edge}, {} s", a.soak.secs);
        let opts = HostOptions::plain(edge, &filter);
        let host = HostProcess::start(&a.host_bin, &opts).await?;
        let envoy = match edge {
            "envoy" => Some(sse_tests::envoy::Envoy::start(host.addr.parse()?, &host::policy()).await),
            _ => None,
        };
        let front = envoy.as_ref().map_or(host.addr.clone(), |e| e.addr.to_string());
        let front_pids = envoy.as_ref().map(|e| vec![e.pid()]).unwrap_or_default();
        let t = ours(edge, &front, &front, vec![host.pid()], front_pids);
        let probes = soak::Probes {
            host: host.addr.clone(),
            envoy_admin: envoy.as_ref().map(|e| e.admin.to_string()),
            filter: edge != "native",
        };
        report.insert(edge.into(), soak::soak(&t, &probes, a.soak).await?);
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&Value::Object(report))?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
