//! Publishing to sse-edge from a backend service.
//!
//! ```no_run
//! # async fn example() -> Result<(), sse_publisher::PublishError> {
//! use sse_publisher::{Event, Publisher};
//! use serde_json::json;
//!
//! let publisher = Publisher::new("https://sse.example.com", "PUBLISHER-TOKEN")?;
//! // The seed's helper: channel `dashboard-updates`, type `dashboard-update`.
//! publisher
//!     .broadcast_dashboard_update("acme-corp", json!({"widgets": ["sroi", "vis"]}))
//!     .await?;
//! // Several events of one company, stored all or none, in order.
//! let ids = publisher
//!     .publish_batch(
//!         "acme-corp",
//!         &[
//!             Event::new("report-updates", "report-ready", json!({"report": 7})),
//!             Event::new("dashboard-updates", "dashboard-update", json!({"widgets": ["sroi"]})),
//!         ],
//!     )
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Every publish carries a fresh random `Idempotency-Key`, the same on each of its
//! attempts: when a reply is lost (timeout, reset) and the publish is retried, the host
//! stores the events once and answers with the first attempt's IDs. Retries are bounded
//! ([`Retry`]) and happen only where they can help (unreachable host, 408, 429, 5xx);
//! other refusals come back at once as [`PublishError::Refused`] with the host's code.

mod error;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

pub use error::PublishError;
pub use retry::Retry;

/// One event to publish: the channel, the event type, its JSON data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The channel (`dashboard-updates`, ...).
    pub channel: String,
    /// The event type (`dashboard-update`, ...): 1-64 characters of `[A-Za-z0-9_.:-]`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Any JSON value but null.
    pub data: Value,
}

impl Event {
    /// An event of type `kind` on `channel`.
    pub fn new(channel: impl Into<String>, kind: impl Into<String>, data: Value) -> Self {
        Self {
            channel: channel.into(),
            kind: kind.into(),
            data,
        }
    }
}

/// Where the publisher's bearer token comes from at each attempt (so a token refreshed
/// between retries is used).
type TokenSource = Arc<dyn Fn() -> String + Send + Sync>;

/// A client of one sse-edge deployment (the host, or Envoy in front of it). Cheap to
/// clone; share one per process.
#[derive(Clone)]
pub struct Publisher {
    http: reqwest::Client,
    endpoint: String,
    token: TokenSource,
    retry: Retry,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("Publisher")
            .field("endpoint", &self.endpoint)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The host's error body.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

impl Publisher {
    /// A publisher of `base_url` (e.g. `https://sse.example.com`) using a publisher-role
    /// `token` (see [`Publisher::with_token_source`] for tokens that refresh).
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Self, PublishError> {
        let token = token.into();
        Self::with_token_source(base_url, move || token.clone())
    }

    /// A publisher that asks `token` for the bearer token before every attempt (a token
    /// refreshed meanwhile is used by the next retry of an unreachable host, 408, 429 or
    /// 5xx; a 401 is a refusal and is not retried).
    pub fn with_token_source(
        base_url: &str,
        token: impl Fn() -> String + Send + Sync + 'static,
    ) -> Result<Self, PublishError> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PublishError::Config(format!(
                "base URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        let retry = Retry::default();
        Ok(Self {
            http: build_client(&retry)?,
            endpoint: format!("{base}/sse/publish"),
            token: Arc::new(token),
            retry,
        })
    }

    /// Replaces the retry policy.
    pub fn retry(mut self, retry: Retry) -> Result<Self, PublishError> {
        self.http = build_client(&retry)?;
        let hour = Duration::from_secs(3600);
        self.retry = Retry {
            attempts: retry.attempts.max(1),
            base_delay: retry.base_delay.min(hour),
            max_delay: retry.max_delay.min(hour),
            request_timeout: retry.request_timeout,
        };
        Ok(self)
    }

    /// Publishes one event to `channel` of `company`; returns its ID.
    pub async fn publish(&self, company: &str, channel: &str, kind: &str, data: Value) -> Result<String, PublishError> {
        let body = serde_json::json!({"companyId": company, "channel": channel, "type": kind, "data": data});
        let reply = self.send(&body, &new_key()?).await?;
        reply
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| PublishError::Reply(reply.to_string()))
    }

    /// Publishes several events of one company, stored all or none and in order;
    /// returns their IDs in the same order.
    pub async fn publish_batch(&self, company: &str, events: &[Event]) -> Result<Vec<String>, PublishError> {
        self.publish_batch_with_key(company, events, &new_key()?).await
    }

    /// [`Publisher::publish_batch`] with the caller's idempotency key (1-255 visible
    /// ASCII characters): for a publish the caller may repeat itself after
    /// [`PublishError::GaveUp`] (e.g. from a job queue), with the same key and events.
    pub async fn publish_batch_with_key(
        &self,
        company: &str,
        events: &[Event],
        key: &str,
    ) -> Result<Vec<String>, PublishError> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(PublishError::Config(
                "an idempotency key is 1-255 visible ASCII characters".into(),
            ));
        }
        let events: Vec<Value> = events
            .iter()
            .map(|e| serde_json::json!({"companyId": company, "channel": e.channel, "type": e.kind, "data": e.data}))
            .collect();
        let reply = self.send(&serde_json::json!({ "events": events }), key).await?;
        serde_json::from_value(reply.get("ids").cloned().unwrap_or(Value::Null))
            .map_err(|_| PublishError::Reply(reply.to_string()))
    }

    /// The seed's `broadcast`: one event of type `kind` to `channel` of `company`.
    pub async fn broadcast(
        &self,
        company: &str,
        channel: &str,
        kind: &str,
        data: Value,
    ) -> Result<String, PublishError> {
        self.publish(company, channel, kind, data).await
    }

    /// The seed's `broadcastDashboardUpdate`: `dashboard-update` on `dashboard-updates`.
    pub async fn broadcast_dashboard_update(&self, company: &str, data: Value) -> Result<String, PublishError> {
        self.publish(company, "dashboard-updates", "dashboard-update", data)
            .await
    }

    /// The seed's `broadcastEvidenceUpdate`: `evidence-update` on `evidence-updates`.
    pub async fn broadcast_evidence_update(&self, company: &str, data: Value) -> Result<String, PublishError> {
        self.publish(company, "evidence-updates", "evidence-update", data).await
    }

    /// The seed's `broadcastReportUpdate`: `report-update` on `report-updates` (use
    /// [`Publisher::broadcast`] for `report-ready` and `report-failed`).
    pub async fn broadcast_report_update(&self, company: &str, data: Value) -> Result<String, PublishError> {
        self.publish(company, "report-updates", "report-update", data).await
    }

    /// Sends `body` with `key`, retrying as [`Retry`] says; the reply's JSON on 200.
    async fn send(&self, body: &Value, key: &str) -> Result<Value, PublishError> {
        let body = serde_json::to_vec(body).map_err(|e| PublishError::Reply(e.to_string()))?;
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            let result = self
                .http
                .post(&self.endpoint)
                .bearer_auth((self.token)())
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(body.clone())
                .send()
                .await;
            let retry_after = match result {
                Ok(res) if res.status().is_success() => match res.bytes().await {
                    // The events are stored; a body of another shape is not a publish reply.
                    Ok(bytes) => {
                        return serde_json::from_slice(&bytes).map_err(|e| PublishError::Reply(e.to_string()));
                    }
                    // The reply was lost on its way: retrying with the same key is safe.
                    Err(e) => {
                        last = e.to_string();
                        None
                    }
                },
                Ok(res) => {
                    let status = res.status().as_u16();
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = res.text().await.unwrap_or_default();
                    let parsed: Option<ErrorBody> = serde_json::from_str(&text).ok();
                    let (code, message) = parsed.map_or((String::new(), text), |e| (e.error, e.message));
                    if !retry::retryable(status) {
                        return Err(PublishError::Refused { status, code, message });
                    }
                    last = format!("{status} {code} {message}");
                    retry_after
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            };
            if attempt < self.retry.attempts {
                tokio::time::sleep(self.retry.delay(attempt + 1, retry_after)).await;
            }
        }
        Err(PublishError::GaveUp {
            attempts: self.retry.attempts,
            last,
        })
    }
}

fn build_client(retry: &Retry) -> Result<reqwest::Client, PublishError> {
    reqwest::Client::builder()
        .timeout(retry.request_timeout)
        // A redirect would turn the POST into a GET elsewhere: it is a refusal here.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PublishError::Config(e.to_string()))
}

/// A fresh idempotency key: 128 random bits, hex. Without OS randomness there is no
/// key that two publishers could not share, so that is an error.
fn new_key() -> Result<String, PublishError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| PublishError::Config(format!("no randomness for idempotency keys: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
