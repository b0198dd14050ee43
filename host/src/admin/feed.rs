//! The revocation feed the filter fetches: `GET {edge.revocations.path}` signed with the
//! edge secret (`sse_policy::revocation::sign_feed`), answered over HTTP for Envoy and
//! in-process for the embedded edge ([`upstream`]), by the same function.

use std::sync::Arc;

use sse_policy::revocation::{verify_feed, FEED_SIG, FEED_TS};
use sse_policy::{error_body, ErrorCode, PolicyConfig};

use super::revocations::RevocationStore;
use crate::edge::{HeaderMap, LocalReply, Upstream};

/// Answers a feed request for `path` whose headers `header` reads: 200 with the list,
/// 304 when `If-None-Match` is current, 401 without a valid fresh signature.
pub fn answer<'h>(
    policy: &PolicyConfig,
    store: &RevocationStore,
    path: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    now: u64,
) -> LocalReply {
    let feed = &policy.edge.revocations;
    if path != feed.path {
        return json(404, error_body(ErrorCode::NotFound, "no such route"));
    }
    let (ts, sig) = (header(FEED_TS), header(FEED_SIG));
    if !verify_feed(&policy.edge.secret, path, ts, sig, now, policy.edge.max_skew_secs) {
        return json(
            401,
            error_body(ErrorCode::Unauthorized, "the revocation feed is for the edge only"),
        );
    }
    let (body, etag) = store.feed(now);
    let etag_header = (b"etag".to_vec(), etag.clone().into_bytes());
    if header("if-none-match") == Some(etag.as_str()) {
        return LocalReply {
            status: 304,
            headers: vec![etag_header],
            body: Vec::new(),
        };
    }
    LocalReply {
        status: 200,
        headers: vec![
            (b"content-type".to_vec(), b"application/json".to_vec()),
            (b"cache-control".to_vec(), b"no-store".to_vec()),
            etag_header,
        ],
        body: body.to_vec(),
    }
}

fn json(status: u16, body: String) -> LocalReply {
    LocalReply {
        status,
        headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
        body: body.into_bytes(),
    }
}

/// The embedded edge's upstream: callouts to `edge.revocations.cluster` get [`answer`];
/// any other cluster fails (no reply), as an unknown cluster would in Envoy.
pub fn upstream(policy: Arc<PolicyConfig>, store: Arc<RevocationStore>) -> Upstream {
    Upstream(Arc::new(move |cluster: &str, headers: &HeaderMap, _body: &[u8]| {
        if cluster != policy.edge.revocations.cluster {
            return None;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let path = header(":path").unwrap_or_default();
        Some(answer(&policy, &store, path, header, crate::clock::unix_secs()))
    }))
}
