//! HTTP helpers for any running host (in-process or a separate process).

use std::time::Duration;

use serde_json::{json, Value};

use crate::sse::SseStream;
use crate::{token, PATIENCE};

/// A host's base URL and an HTTP client without connection reuse (each stream is its own
/// connection, as a browser's EventSource is).
pub struct HostClient {
    pub base: String,
    pub client: reqwest::Client,
}

impl HostClient {
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Self {
            base: base.to_owned(),
            client,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// Opens a stream as a VIEWER of `company`.
    pub async fn stream(&self, company: &str, channels: &[&str]) -> SseStream {
        self.stream_as(&token(company, "VIEWER"), company, channels, None).await
    }

    /// Opens a stream with a token and an optional `Last-Event-ID`; asserts 200.
    pub async fn stream_as(&self, token: &str, company: &str, channels: &[&str], last_id: Option<&str>) -> SseStream {
        let res = self.open_stream(token, company, channels, last_id).await;
        assert_eq!(res.status(), 200, "stream refused: {:?}", res.text().await);
        SseStream::new(res)
    }

    /// Sends the stream request and returns the raw response (for refusals).
    pub async fn open_stream(
        &self,
        token: &str,
        company: &str,
        channels: &[&str],
        last_id: Option<&str>,
    ) -> reqwest::Response {
        let mut q = format!("/sse/stream?companyId={company}");
        for c in channels {
            q.push_str(&format!("&channel={c}"));
        }
        let mut req = self.client.get(self.url(&q)).bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        req.send().await.expect("stream request")
    }

    /// Publishes through the HTTP API as a PUBLISHER of `company`; returns the ID.
    pub async fn publish(&self, company: &str, channel: &str, kind: &str, data: Value) -> String {
        let body = json!({"companyId": company, "channel": channel, "type": kind, "data": data});
        let res = self
            .client
            .post(self.url("/sse/publish"))
            .bearer_auth(token(company, "PUBLISHER"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// `GET /metrics` (open in test hosts): the Prometheus text.
    pub async fn metrics(&self) -> String {
        let res = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200, "/metrics");
        res.text().await.unwrap()
    }

    /// Opens streams of `company` as its viewer until one is refused; returns how many
    /// were admitted and the refusal's status (the admitted ones close on return).
    pub async fn streams_admitted(&self, company: &str) -> (usize, u16) {
        let viewer = token(company, "VIEWER");
        let mut held = Vec::new();
        loop {
            let res = self.open_stream(&viewer, company, &["dashboard-updates"], None).await;
            if res.status() != 200 {
                return (held.len(), res.status().as_u16());
            }
            held.push(res);
            assert!(held.len() <= 20, "no limit applied to {company}");
        }
    }

    /// Publishes `body` with `token` and one `Idempotency-Key` header per item of `keys`;
    /// returns (status, JSON body, whether the reply says it repeated an earlier publish).
    pub async fn publish_keyed(&self, token: &str, keys: &[&str], body: &Value) -> (u16, Value, bool) {
        let mut req = self.client.post(self.url("/sse/publish")).bearer_auth(token).json(body);
        for k in keys {
            req = req.header("idempotency-key", *k);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        (status, res.json().await.unwrap_or(Value::Null), replayed)
    }

    /// GET `path` with a bearer token; asserts 200 and returns the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let res = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// GET /sse/stats for the whole host, as the platform's super-admin (a company's
    /// ADMIN sees only its own company: `company_stats`).
    pub async fn stats(&self) -> Value {
        self.get_json("/sse/stats", &token("ops", "SUPER_ADMIN")).await
    }

    /// GET /sse/stats as `company`'s ADMIN.
    pub async fn company_stats(&self, company: &str) -> Value {
        self.get_json("/sse/stats", &token(company, "ADMIN")).await
    }

    /// Waits until `cond` holds for the stats (e.g. connections back to 0).
    pub async fn wait_for_stats(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let s = self.stats().await;
            if cond(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl HostClient {
    /// POSTs `body` as JSON to `path` with a bearer token; returns status and JSON body.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path` with a bearer token; returns status and JSON body.
    pub async fn get_status(&self, path: &str, token: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Opens a stream as `subject` of `company` with token ID `jti`; returns it with the
    /// connection ID its `connected` event carried.
    pub async fn stream_of(&self, company: &str, subject: &str, jti: &str) -> (SseStream, String) {
        let t = crate::token_with(
            json!({"sub": subject, "company_id": company, "role": "VIEWER", "jti": jti}),
            600,
        );
        let mut s = self.stream_as(&t, company, &["dashboard-updates"], None).await;
        let connected = s.next_event().await;
        assert_eq!(connected.event, "connected");
        let id = connected.json()["connectionId"].as_str().unwrap().to_owned();
        (s, id)
    }
}
