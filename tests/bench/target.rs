//! How the bench talks to each server: our host (directly, through its embedded edge, or
//! through Envoy) and nchan. Same client, same payloads.

use anyhow::{ensure, Result};

/// Which wire API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `GET /sse/stream` with a bearer token; `POST /sse/publish`.
    Ours,
    /// `GET /sub/<group>/<channel>`; `POST /pub/<group>/<channel>`.
    Nchan,
}

/// One server under test.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) flavor: Flavor,
    /// Where subscribers connect (the host, Envoy, or nginx).
    pub(crate) sub_addr: String,
    /// Where publishes go (for ours behind Envoy: the host's direct port is not used;
    /// Envoy serves publishes too).
    pub(crate) pub_addr: String,
    /// The server processes whose memory and CPU are measured.
    pub(crate) pids: Vec<u32>,
    /// A proxy in front (Envoy), measured separately.
    pub(crate) front_pids: Vec<u32>,
    pub(crate) viewer: String,
    pub(crate) publisher: String,
    /// Subscribers connect over TLS (HTTP/1.1, ALPN) with this client.
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
    /// The company (ours) or channel (nchan) subscribers and publishes use.
    pub(crate) company: String,
    /// Mints a token for (company, role): ours only.
    pub(crate) mint: Option<fn(&str, &str) -> String>,
    /// The channels a stream subscribes to (ours; nchan: one).
    pub(crate) channels: Vec<String>,
}

impl Target {
    /// A copy a spawned task can own.
    pub(crate) fn clone_for_task(&self) -> Self {
        self.clone()
    }

    /// The same server, for another company (ours, with its own tokens) or channel (nchan).
    pub(crate) fn for_company(&self, company: &str) -> Self {
        let mut t = self.clone();
        t.company = company.to_owned();
        if let Some(mint) = self.mint {
            t.viewer = mint(company, "VIEWER");
            t.publisher = mint(company, "PUBLISHER");
        }
        t
    }

    /// The subscribe request, optionally resuming after `last_id`.
    pub(crate) fn subscribe_request(&self, last_id: Option<&str>) -> String {
        let resume = last_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
        match self.flavor {
            Flavor::Ours => format!(
                "GET /sse/stream?companyId={}{} HTTP/1.1\r\nhost: bench\r\n\
                 authorization: Bearer {}\r\n{resume}\r\n",
                self.company,
                self.channels
                    .iter()
                    .map(|c| format!("&channel={c}"))
                    .collect::<String>(),
                self.viewer
            ),
            Flavor::Nchan => format!(
                "GET /sub/bench/{} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n{resume}\r\n",
                self.company
            ),
        }
    }

    /// The line that tells the client its subscription is live.
    pub(crate) fn ready(&self) -> &'static str {
        match self.flavor {
            Flavor::Ours => "event: connected",
            Flavor::Nchan => ": hi",
        }
    }

    /// Publishes `count` events in one request (ours only: nchan has no batch API).
    pub(crate) async fn publish_batch(&self, http: &reqwest::Client, count: usize) -> Result<()> {
        ensure!(self.flavor == Flavor::Ours, "{}: no batch publish", self.name);
        let one = format!(
            r#"{{"companyId":"{}","channel":"dashboard-updates","type":"bench","data":{{"n":0,"t":0}}}}"#,
            self.company
        );
        let body = format!(r#"{{"events":[{}]}}"#, vec![one; count].join(","));
        let res = http
            .post(format!("http://{}/sse/publish", self.pub_addr))
            .bearer_auth(&self.publisher)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        ensure!(
            res.status().is_success(),
            "{}: batch publish failed: {}",
            self.name,
            res.status()
        );
        Ok(())
    }

    /// Publishes event `n` stamped with `t` (µs since the scenario start); returns its ID.
    pub(crate) async fn publish(&self, http: &reqwest::Client, n: u64, t: u128) -> Result<String> {
        self.publish_on(http, "dashboard-updates", n, t).await
    }

    /// [`Target::publish`] on `channel` (ours).
    pub(crate) async fn publish_on(&self, http: &reqwest::Client, channel: &str, n: u64, t: u128) -> Result<String> {
        let data = format!(r#"{{"n":{n},"t":{t}}}"#);
        let (url, body, auth) = match self.flavor {
            Flavor::Ours => (
                format!("http://{}/sse/publish", self.pub_addr),
                format!(
                    r#"{{"companyId":"{}","channel":"{channel}","type":"bench","data":{data}}}"#,
                    self.company
                ),
                Some(&self.publisher),
            ),
            Flavor::Nchan => (
                format!("http://{}/pub/bench/{}", self.pub_addr, self.company),
                data,
                None,
            ),
        };
        let mut req = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "text/json")
            .body(body);
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        let res = req.send().await?;
        let status = res.status();
        ensure!(status.is_success(), "{}: publish failed: {status}", self.name);
        let reply: serde_json::Value = res.json().await?;
        let id = reply.get("id").or_else(|| reply.get("last_message_id"));
        Ok(id.and_then(|v| v.as_str()).unwrap_or_default().to_owned())
    }
}
