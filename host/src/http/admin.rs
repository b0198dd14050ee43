//! The admin API: `GET {prefix}/admin/connections`, `POST {prefix}/admin/disconnect`,
//! `POST {prefix}/admin/revoke`. The policy admitted the caller as an admin (or
//! super-admin); here each request is scoped to what the caller may see and touch: a
//! company's admin acts on its own company only, whatever the request names; a
//! super-admin on any company, or on all.

use hyper::{Request, Response};
use serde::Deserialize;
use sse_policy::revocation::{Revocation, ANY_COMPANY};
use sse_policy::{DenyReason, Grant, Identity};

use super::publish::read_body;
use super::reply::{self, Body};
use crate::admin::{merge, ControlMessage};
use crate::error::HostError;
use crate::hub::admin::Selector;
use crate::state::AppState;

/// Largest admin request body.
const MAX_BODY: usize = 4096;
/// Longest a revocation lasts: past any token's lifetime a host accepts.
const MAX_REVOCATION_SECS: u64 = 30 * 86_400;

/// The company an admin acts on: its own (a company admin naming another is refused),
/// or for a super-admin the one named, if any.
fn scope(who: &Identity, named: Option<String>) -> Result<Option<String>, HostError> {
    if who.super_admin {
        return Ok(named.filter(|c| !c.is_empty()));
    }
    if who.company.is_empty() || named.as_deref().is_some_and(|c| c != who.company) {
        return Err(DenyReason::CompanyMismatch.into());
    }
    Ok(Some(who.company.clone()))
}

fn caller(grant: &Grant) -> Result<&Identity, HostError> {
    grant.identity.as_ref().ok_or(HostError::NotFound)
}

/// Checks a value an admin names (subject, jti, channel, connection ID): bounded, no
/// control characters.
fn field(name: &str, value: Option<String>) -> Result<Option<String>, HostError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) => Err(HostError::BadRequest(
            format!("{name} must be 1-256 characters without control characters"),
        )),
        v => Ok(v),
    }
}

/// `GET {prefix}/admin/connections?companyId=&channel=&subject=&host=`.
pub(crate) async fn connections<B>(
    state: &AppState,
    req: &Request<B>,
    grant: Grant,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let who = caller(&grant)?;
    let mut q = Query::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        let slot = match &*k {
            "companyId" => &mut q.company_id,
            "channel" => &mut q.channel,
            "subject" => &mut q.subject,
            "host" => &mut q.host,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(HostError::BadRequest(format!("{k} is given more than once")));
        }
    }
    let selector = Selector {
        company_id: scope(who, q.company_id)?,
        subject: field("subject", q.subject)?,
        connection_id: None,
        channel: field("channel", q.channel)?,
    };
    let host = field("host", q.host)?;
    let mut replies = state
        .broker
        .control(&ControlMessage::List {
            selector: selector.clone(),
        })
        .await?;
    if let Some(h) = &host {
        replies.retain(|(name, _)| name == h);
    }
    let now = crate::clock::unix_secs();
    let revocations = state
        .broker
        .admin()
        .revocations
        .entries(selector.company_id.as_deref(), now);
    let listing = merge::listing(state.broker.epoch(), replies, revocations);
    Ok(reply::json(&state.config.policy, origin, 200, &listing))
}

#[derive(Default)]
struct Query {
    company_id: Option<String>,
    channel: Option<String>,
    subject: Option<String>,
    host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DisconnectIn {
    company_id: Option<String>,
    subject: Option<String>,
    connection_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RevokeIn {
    company_id: Option<String>,
    subject: Option<String>,
    jti: Option<String>,
    until: Option<u64>,
}

/// Reads an admin action's JSON body (the one the edge signed, behind an edge).
async fn body<B: super::routes::RequestBody, T: for<'de> Deserialize<'de>>(
    state: &AppState,
    req: Request<B>,
    signed_body: Option<String>,
) -> Result<T, HostError> {
    let bytes = read_body(req.into_body(), MAX_BODY, state.config.http.head_timeout).await?;
    if let Some(expected) = signed_body {
        sse_policy::identity::check_body(&expected, &bytes)?;
    }
    serde_json::from_slice(&bytes).map_err(|e| HostError::BadRequest(format!("invalid body: {e}")))
}

/// `POST {prefix}/admin/disconnect` with `{companyId?, subject?, connectionId?}` (at
/// least one): the streams named end with `closing` (`revoked`).
pub(crate) async fn disconnect<B: super::routes::RequestBody>(
    state: &AppState,
    req: Request<B>,
    grant: Grant,
    signed_body: Option<String>,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let who = caller(&grant)?.clone();
    let input: DisconnectIn = body(state, req, signed_body).await?;
    if input.company_id.is_none() && input.subject.is_none() && input.connection_id.is_none() {
        return Err(HostError::BadRequest(
            "name a companyId, a subject or a connectionId".into(),
        ));
    }
    let selector = Selector {
        company_id: scope(&who, input.company_id)?,
        subject: field("subject", input.subject)?,
        connection_id: field("connectionId", input.connection_id)?,
        channel: None,
    };
    let replies = state
        .broker
        .control(&ControlMessage::Disconnect {
            selector: selector.clone(),
        })
        .await?;
    let count = merge::count(&replies).unwrap_or(0);
    tracing::info!(admin = %who.subject, ?selector, disconnected = count, "admin disconnect");
    let body = serde_json::json!({ "disconnected": count, "hosts": replies.len() });
    Ok(reply::json(&state.config.policy, origin, 200, &body))
}

/// `POST {prefix}/admin/revoke` with `{companyId?, jti | subject, until?}`: tokens named
/// are refused at every edge until `until` (default: an hour and the JWT leeway, the
/// longest a dashboard token usually lives), and their open streams end.
pub(crate) async fn revoke<B: super::routes::RequestBody>(
    state: &AppState,
    req: Request<B>,
    grant: Grant,
    signed_body: Option<String>,
    origin: Option<&str>,
) -> Result<Response<Body>, HostError> {
    let who = caller(&grant)?.clone();
    let input: RevokeIn = body(state, req, signed_body).await?;
    let (jti, subject) = (field("jti", input.jti)?, field("subject", input.subject)?);
    if jti.is_some() == subject.is_some() {
        return Err(HostError::BadRequest("name exactly one of jti and subject".into()));
    }
    let now = crate::clock::unix_secs();
    let default_until = now + 3600 + state.config.policy.jwt.leeway_secs;
    let until = input.until.unwrap_or(default_until);
    if until <= now || until > now + MAX_REVOCATION_SECS {
        return Err(HostError::BadRequest(format!(
            "until must be in the future and at most {MAX_REVOCATION_SECS} seconds away"
        )));
    }
    // A super-admin names a company, or `*` for all of them; nobody else may use `*`.
    let company = match input.company_id.as_deref() {
        Some(ANY_COMPANY) if who.super_admin => ANY_COMPANY.to_owned(),
        _ => scope(&who, input.company_id)?
            .ok_or_else(|| HostError::BadRequest("companyId is required (or \"*\")".into()))?,
    };
    if company != ANY_COMPANY && !state.config.policy.is_valid_company_id(&company) {
        return Err(DenyReason::InvalidCompanyId.into());
    }
    let entry = Revocation {
        company_id: company,
        issued_before: subject.is_some().then_some(now),
        jti,
        subject,
        until,
    };
    // Recorded here first, so the action carries the entry merged with any older one.
    let recorded = state
        .broker
        .admin()
        .revocations
        .add(entry, now)
        .map_err(|e| HostError::BadRequest(e.to_string()))?;
    let replies = state
        .broker
        .control(&ControlMessage::Revoke {
            entry: recorded.clone(),
        })
        .await?;
    let count =
        merge::count(&replies).ok_or_else(|| HostError::BadRequest("a host's revocation list is full".into()))?;
    tracing::info!(admin = %who.subject, company = %recorded.company_id, until, disconnected = count, "admin revoke");
    let body = serde_json::json!({ "revocation": recorded, "disconnected": count, "hosts": replies.len() });
    Ok(reply::json(&state.config.policy, origin, 200, &body))
}
