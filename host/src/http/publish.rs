//! `POST /sse/publish` (publisher token) and `POST /sse/test-broadcast` (dev mode only):
//! `{companyId, channel, type, data}` or `{"events": [...]}` for one company.

use http_body_util::{BodyExt, Limited};
use hyper::{Request, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use sse_policy::{authorize_publish, Grant};

use super::reply::{self, Body};
use crate::error::HostError;
use crate::hub::idempotency::IdempotencyKey;
use crate::state::AppState;

/// The header a publisher sets so that a retried publish is stored once
/// (draft-ietf-httpapi-idempotency-key-header).
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a reply that repeats an earlier publish's IDs (nothing was stored again).
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventIn {
    company_id: String,
    channel: String,
    #[serde(rename = "type")]
    kind: String,
    data: Box<RawValue>,
}

/// Either one event's fields or `events`; checked by hand because serde's untagged
/// enums cannot carry a `RawValue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublishIn {
    events: Option<Vec<EventIn>>,
    company_id: Option<String>,
    channel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<Box<RawValue>>,
}

impl PublishIn {
    fn into_events(self) -> Result<(Vec<EventIn>, bool), HostError> {
        let missing = |f: &str| HostError::BadRequest(format!("{f} is required (data: any JSON value but null)"));
        match self {
            Self {
                events: Some(events),
                company_id: None,
                channel: None,
                kind: None,
                data: None,
            } => Ok((events, true)),
            Self {
                events: None,
                company_id,
                channel,
                kind,
                data,
            } => Ok((
                vec![EventIn {
                    company_id: company_id.ok_or_else(|| missing("companyId"))?,
                    channel: channel.ok_or_else(|| missing("channel"))?,
                    kind: kind.ok_or_else(|| missing("type"))?,
                    data: data.ok_or_else(|| missing("data"))?,
                }],
                false,
            )),
            _ => Err(HostError::BadRequest(
                "give either \"events\" or one event's fields, not both".into(),
            )),
        }
    }
}

/// Reads a whole request body of at most `max` bytes (413 past it) that must arrive
/// within `within` (the head's timeout: a client trickling its body holds no more than
/// one trickling its head).
pub(crate) async fn read_body<B: super::routes::RequestBody>(
    body: B,
    max: usize,
    within: std::time::Duration,
) -> Result<bytes::Bytes, HostError> {
    let read = Limited::new(body, max).collect();
    let collected = tokio::time::timeout(within, read)
        .await
        .map_err(|_| HostError::BadRequest("the request body did not arrive in time".into()))?;
    collected.map(http_body_util::Collected::to_bytes).map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            HostError::BodyTooLarge(max)
        } else {
            HostError::BadRequest("could not read the request body".into())
        }
    })
}

/// Reads, validates and publishes; all events of a batch or none.
pub(crate) async fn handle<B: super::routes::RequestBody>(
    state: &AppState,
    req: Request<B>,
    grant: Grant,
    signed_body: Option<String>,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let policy = &state.config.policy;
    // The broker refuses too; asking first spares reading the body.
    if state.is_draining() {
        return Err(HostError::Draining);
    }
    let mut keys = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let key_header = keys.next().map(|k| k.as_bytes().to_vec());
    if keys.next().is_some() {
        return Err(HostError::BadRequest("give one Idempotency-Key header".into()));
    }
    let bytes = read_body(
        req.into_body(),
        state.config.publish.max_body_bytes,
        state.config.http.head_timeout,
    )
    .await?;
    // Behind an edge, the body must be the one it signed: a captured signature cannot
    // carry other events.
    if let Some(expected) = signed_body {
        sse_policy::identity::check_body(&expected, &bytes)?;
    }
    let input: PublishIn = serde_json::from_slice(&bytes).map_err(|e| {
        HostError::BadRequest(format!(
            "body must be {{companyId, channel, type, data}} or {{\"events\": [...]}}: {e}"
        ))
    })?;
    let (events, batch) = input.into_events()?;
    let targets = events.iter().map(|e| (e.company_id.as_str(), e.channel.as_str()));
    let company = authorize_publish(policy, &grant, targets)?;
    // Once the publisher may publish here: the key is bound to the body's digest.
    let key = key_header
        .map(|k| IdempotencyKey::new(&k, &bytes))
        .transpose()
        .map_err(|e| HostError::BadRequest(e.to_string()))?;
    // A guard of the HTTP API against one publisher flooding it; in-process publishers
    // are trusted code and are not metered. A store shared by several hosts meters the
    // company's rate itself, so it holds across hosts (and a replay spends nothing).
    // This host's own bucket comes first either way: it never holds fewer tokens than
    // the shared one, so it refuses nothing Redis would accept, and a flood is refused
    // here without reaching Redis.
    let n = events.len() as f64;
    state.rate.take(company, n).map_err(|_| HostError::RateLimited)?;
    let meter = state.broker.meters_publishes().then(|| {
        let (rate, burst) = state.rate.limits(company);
        crate::backend::Meter { rate, burst }
    });
    let items: Vec<(&str, &str, Box<RawValue>)> = events
        .iter()
        .map(|e| (e.channel.as_str(), e.kind.as_str(), e.data.clone()))
        .collect();
    let published = state
        .broker
        .publish_metered(company, &items, key.as_ref(), meter)
        .await?;
    if published.replayed {
        // Nothing was stored: a retry must not run its publisher out of its rate and
        // into giving up (and publishing again under a new key).
        state.rate.refund(company, n);
    }
    let ids = &published.ids;
    tracing::info!(
        company = %company,
        publisher = grant.identity.as_ref().map_or("dev", |w| w.subject.as_str()),
        events = ids.len(),
        first_id = %ids[0],
        replayed = published.replayed,
        "published"
    );
    let body = if batch {
        serde_json::json!({ "ids": ids })
    } else {
        serde_json::json!({ "id": ids[0] })
    };
    let mut res = reply::json(policy, origin, 200, &body);
    if published.replayed {
        res.headers_mut()
            .insert(IDEMPOTENT_REPLAYED, hyper::header::HeaderValue::from_static("true"));
    }
    Ok(res)
}
