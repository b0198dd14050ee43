//! Processes under test (our `sse-host`, nginx+nchan) and their resource usage from /proc.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sse_tests::{free_port, wait_for_port, TempDir};

pub(crate) const JWT_SECRET: &str = "bench-jwt-secret-that-is-32-bytes-long!";

/// The policy every bench host (and Envoy in front of one) uses.
pub(crate) fn policy() -> Value {
    json!({
        "jwt": {"hmac_secret": JWT_SECRET},
        "limits": {"max_connections_per_company": 20000},
        // Eight channels: a stream may follow all of them (the channels scenario).
        "channels": crate::channels::NAMES.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "edge": {"secret": "bench-edge-secret-that-is-32-bytes-long"},
    })
}

async fn wait_listening(port: u16, what: &str) -> Result<()> {
    if !wait_for_port(port).await {
        bail!("{what} did not start listening on 127.0.0.1:{port}");
    }
    Ok(())
}

/// How to start our host.
#[derive(Clone, Copy)]
pub(crate) struct HostOptions<'a> {
    pub(crate) queue_capacity: usize,
    /// `native`, `wasm` (the embedded edge) or `envoy` (behind Envoy).
    pub(crate) edge: &'a str,
    pub(crate) redis_url: Option<&'a str>,
    /// `[redis] cluster = ...` (seed nodes, as a TOML array), with `redis_url` set (to
    /// anything: a cluster has no `url`).
    pub(crate) redis_cluster: Option<&'a str>,
    /// `[redis] readers`.
    pub(crate) redis_readers: usize,
    /// `[redis] reader`: `blocking` or `announced`.
    pub(crate) redis_reader: &'a str,
    /// The filter module for edge `wasm`.
    pub(crate) filter: Option<&'a Path>,
    /// The host's own TLS: certificate and key files.
    pub(crate) tls: Option<(&'a Path, &'a Path)>,
    /// The HTTP/1.1 stream fast path (on unless measuring hyper's HTTP/1 alone).
    pub(crate) fast_path: bool,
    /// `worker_threads` (0: one per core).
    pub(crate) worker_threads: usize,
}

impl<'a> HostOptions<'a> {
    /// Edge `edge` on the memory backend, plain HTTP with the fast path, the bench's
    /// queue: what every comparison starts from.
    pub(crate) fn plain(edge: &'a str, filter: &'a Path) -> Self {
        Self {
            queue_capacity: 1024,
            edge,
            redis_url: None,
            redis_cluster: None,
            redis_readers: 1,
            redis_reader: "announced",
            filter: Some(filter),
            tls: None,
            fast_path: true,
            worker_threads: 0,
        }
    }
}

/// A running `sse-host`; killed on drop.
pub(crate) struct HostProcess {
    child: Child,
    pub(crate) addr: String,
    _dir: TempDir,
}

impl HostProcess {
    pub(crate) async fn start(bin: &Path, o: &HostOptions<'_>) -> Result<Self> {
        let dir = TempDir::new("bench-host");
        std::fs::write(dir.0.join("policy.json"), policy().to_string())?;
        let backend = o.redis_url.map_or(String::new(), |url| {
            let cluster = o.redis_cluster.unwrap_or_default();
            let (readers, reader) = (o.redis_readers, o.redis_reader);
            // A cluster is found from its seeds alone.
            let url = if cluster.is_empty() {
                format!("url = \"{url}\"\n")
            } else {
                String::new()
            };
            format!("backend = \"redis\"\n\n[redis]\n{url}readers = {readers}\nreader = \"{reader}\"\n{cluster}\n\n")
        });
        let tls = o.tls.map_or(String::new(), |(cert, key)| {
            format!(
                "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n",
                cert.display(),
                key.display()
            )
        });
        let toml = format!(
            "listen = \"127.0.0.1:0\"\nedge = \"{}\"\npolicy_file = \"policy.json\"\nworker_threads = {}\n{backend}\n{tls}\
             [stream]\nheartbeat_secs = 30\nqueue_capacity = {}\nmax_connections = 19000\nhttp1_fast_path = {}\n\n\
             [publish]\nrate_per_sec = 10000000.0\nburst = 10000000.0\n",
            o.edge, o.worker_threads, o.queue_capacity, o.fast_path
        );
        std::fs::write(dir.0.join("host.toml"), toml)?;
        let mut cmd = Command::new(bin);
        if let Some(filter) = o.filter {
            cmd.env("SSE_FILTER_WASM", filter);
        }
        let mut child = cmd
            .args(["serve", "--config"])
            .arg(dir.0.join("host.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let Some(addr) = sse_tests::node::reported_address(&mut child).await else {
            let _ = child.kill();
            bail!("sse-host did not report its address");
        };
        Ok(Self {
            child,
            addr: addr.to_string(),
            _dir: dir,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with nchan, configured like the reference (`../shared/reference/sse-hubs.md`
/// §6.1): memory store, 100-event history per channel, 30 s pings, live-only first
/// connect, two workers (our host's two cores).
pub(crate) struct Nchan {
    child: Child,
    pub(crate) sub_addr: String,
    pub(crate) pub_addr: String,
    _dir: TempDir,
}

impl Nchan {
    pub(crate) async fn start() -> Result<Self> {
        let module = "/usr/lib/nginx/modules/ngx_nchan_module.so";
        if !Path::new(module).exists() {
            bail!("{module} not found: install nginx and nchan with `apt-get install -y nginx libnginx-mod-nchan`");
        }
        let (sub, publ) = (free_port(), free_port());
        let dir = TempDir::new("bench-nchan");
        let conf = format!(
            r#"load_module {module};
worker_processes 2;
worker_rlimit_nofile 20000;
pid nchan.pid;
error_log stderr error;
events {{ worker_connections 20000; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path tmp_body; proxy_temp_path tmp_proxy; fastcgi_temp_path tmp_fcgi;
  uwsgi_temp_path tmp_uwsgi; scgi_temp_path tmp_scgi;
  nchan_shared_memory_size 256M;
  server {{
    listen 127.0.0.1:{sub} backlog=4096;
    location ~ ^/sub/(\w+)/(\w+)$ {{
      nchan_subscriber eventsource;
      nchan_channel_group $1;
      nchan_channel_id $2;
      nchan_subscriber_first_message newest;
      nchan_eventsource_ping_interval 30;
    }}
  }}
  server {{
    listen 127.0.0.1:{publ};
    location ~ ^/pub/(\w+)/(\w+)$ {{
      nchan_publisher;
      nchan_channel_group $1;
      nchan_channel_id $2;
      nchan_message_buffer_length 100;
      nchan_message_timeout 1h;
      client_max_body_size 64k;
    }}
  }}
}}
"#
        );
        std::fs::write(dir.0.join("nchan.conf"), conf)?;
        let prefix = format!("{}/", dir.0.display());
        let child = Command::new("nginx")
            .args(["-p", &prefix, "-c", "nchan.conf", "-e", "stderr", "-g", "daemon off;"])
            .current_dir(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting nginx (apt-get install -y nginx libnginx-mod-nchan)")?;
        let nchan = Self {
            child,
            sub_addr: format!("127.0.0.1:{sub}"),
            pub_addr: format!("127.0.0.1:{publ}"),
            _dir: dir,
        };
        wait_listening(sub, "nginx").await?;
        wait_listening(publ, "nginx").await?;
        Ok(nchan)
    }

    /// The master and its workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        pids.extend(children_of(master));
        pids
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

/// Resident set size of processes, in KiB.
pub(crate) fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| proc_field(*p, "status", "VmRSS:")).sum()
}

/// Proportional set size of processes (shared pages divided among sharers), in KiB.
pub(crate) fn pss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| proc_field(*p, "smaps_rollup", "Pss:")).sum()
}

/// User + system CPU time of processes, in seconds.
pub(crate) fn cpu_secs(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = after.split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (ticks(11) + ticks(12)) / 100.0 // utime, stime; USER_HZ is 100 on Linux
        })
        .sum()
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
