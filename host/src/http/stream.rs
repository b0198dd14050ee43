//! `GET /sse/stream`: the SSE response body over a hub subscription.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use hyper::{Method, Request};
use sse_policy::Grant;

use super::reply::{self, Body};
use crate::backend::StreamRequest;
use crate::error::HostError;
use crate::hub::admin::Owner;
use crate::hub::subscriber::Next;
use crate::hub::{sse, Subscription};
use crate::state::AppState;

/// The streaming body. It owns the subscription, so the connection slot and the hub
/// registration end exactly when hyper drops the body (normal end, client abort, error).
struct SseBody {
    head: Option<Bytes>,
    subscription: Subscription,
    company: String,
}

impl HttpBody for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        match self.subscription.subscriber.poll_next(cx) {
            Poll::Ready(Next::Data(bytes, _)) | Poll::Ready(Next::Last(bytes)) => {
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Next::End) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        tracing::info!(connection_id = %self.subscription.connection_id, company = %self.company, "stream closed");
    }
}

/// The resume ID: the `Last-Event-ID` header (what EventSource sends on reconnect) wins
/// over the `lastEventId` query parameter (what a first connect can carry).
fn resume_id<B>(req: &Request<B>) -> Option<String> {
    if let Some(v) = req.headers().get("last-event-id") {
        return v.to_str().ok().map(str::to_owned);
    }
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "lastEventId")
        .map(|(_, v)| v.into_owned())
}

/// Opens a stream for an authorized request.
pub(crate) async fn open<B>(
    state: &AppState,
    req: &Request<B>,
    grant: Grant,
    origin: Option<&str>,
) -> Result<hyper::Response<Body>, HostError> {
    let policy = &state.config.policy;
    if state.is_draining() {
        return Err(HostError::Draining);
    }
    let who = grant.identity.ok_or(HostError::NotFound)?;
    if req.method() == Method::HEAD {
        return Ok(reply::event_stream(policy, origin, reply::full(Bytes::new())));
    }
    let resume = resume_id(req);
    let owner = Owner {
        subject: who.subject.as_str().into(),
        token_id: who.token_id.as_str().into(),
        issued_at: who.issued_at,
        super_admin: who.super_admin,
    };
    let mut sub = state
        .broker
        .subscribe(StreamRequest {
            company: &who.company,
            channels: &grant.channels,
            resume: resume.as_deref(),
            expires_at: who.expires_at,
            owner: &owner,
        })
        .await?;
    // A revocation that landed between the edge's check and the registration above
    // walked the registry before this stream was in it: check again, now that it is.
    if state
        .broker
        .admin()
        .revocations
        .check(&who, crate::clock::unix_secs())
        .is_err()
    {
        drop(sub);
        return Err(sse_policy::DenyReason::Revoked.into());
    }
    let connected = serde_json::json!({
        "connectionId": sub.connection_id,
        "companyId": who.company,
        "channels": grant.channels,
        "serverTime": crate::clock::unix_millis(),
        "lastEventId": std::mem::take(&mut sub.head_id),
    });
    let mut head = BytesMut::new();
    head.extend_from_slice(&sse::retry_frame(state.config.stream.retry_ms));
    head.extend_from_slice(&sse::event_frame(None, Some("connected"), &connected.to_string()));
    // Taken, not borrowed: the stream lives for hours; its replay should not.
    for frame in std::mem::take(&mut sub.initial) {
        head.extend_from_slice(&frame);
    }
    tracing::info!(
        connection_id = %sub.connection_id,
        company = %who.company,
        subject = %who.subject,
        channels = ?grant.channels,
        resumed_from = resume.as_deref().unwrap_or(""),
        replayed = sub.replayed,
        cross_company = who.super_admin,
        "stream opened"
    );
    let body = SseBody {
        head: Some(head.freeze()),
        subscription: sub,
        company: who.company,
    };
    Ok(reply::event_stream(policy, origin, body.boxed()))
}
