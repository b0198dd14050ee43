//! `GET /sse/poll`: the polling fallback, with the same IDs as the stream.

use std::time::Duration;

use hyper::{Request, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use sse_policy::Grant;

use super::reply::{self, Body};
use crate::backend::PollRequest;
use crate::error::HostError;
use crate::state::AppState;

#[derive(Serialize)]
struct PollEvent<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    data: &'a RawValue,
    timestamp: u64,
}

#[derive(Serialize)]
struct PollBody<'a> {
    events: Vec<PollEvent<'a>>,
    next: &'a str,
    reset: bool,
}

fn param<T: std::str::FromStr>(query: &[(String, String)], name: &str, what: &str) -> Result<Option<T>, HostError> {
    match query.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| HostError::BadRequest(format!("{name} must be {what}"))),
    }
}

/// Answers a poll, long-polling when `wait` is given.
pub(crate) async fn handle<B>(
    state: &AppState,
    req: &Request<B>,
    grant: Grant,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let who = grant.identity.ok_or(HostError::NotFound)?;
    let query: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let max = state.config.poll.max_limit;
    let limit: usize = param(&query, "limit", "a positive integer")?.unwrap_or(max);
    if limit == 0 || limit > max {
        return Err(HostError::BadRequest(format!("limit must be between 1 and {max}")));
    }
    let wait: u64 = param(&query, "wait", "a number of seconds")?.unwrap_or(0);
    let max_wait = state.config.poll.max_wait;
    if Duration::from_secs(wait) > max_wait {
        return Err(HostError::BadRequest(format!(
            "wait must be at most {} seconds",
            max_wait.as_secs()
        )));
    }
    let since = query.iter().find(|(k, _)| k == "since").map(|(_, v)| v.as_str());
    let outcome = state
        .broker
        .poll(PollRequest {
            company: &who.company,
            channels: &grant.channels,
            since,
            limit,
            wait: Duration::from_secs(wait),
        })
        .await?;
    let body = PollBody {
        events: outcome
            .events
            .iter()
            .map(|e| PollEvent {
                id: &e.id,
                kind: &e.kind,
                channel: &e.channel,
                data: &e.data,
                timestamp: e.timestamp_ms,
            })
            .collect(),
        next: &outcome.next,
        reset: outcome.reset,
    };
    Ok(reply::json(&state.config.policy, origin, 200, &body))
}
