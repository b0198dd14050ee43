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
/// Longest a revocation may last (a revocation must outlive the tokens it names: set
/// `until` to their expiry when they live longer than the default hour).
const MAX_REVOCATION_SECS: u64 = 30 * 86_400;
/// Default lifetime of a revocation: the usual dashboard token's hour (plus the JWT
/// leeway, added where it is used).
const DEFAULT_REVOCATION_SECS: u64 = 3600;

/// The company an admin acts on: its own (a company admin naming another is refused),
/// or for a super-admin the one named, if any. Every company named must be a company ID.
fn scope(state: &AppState, who: &Identity, named: Option<String>) -> Result<Option<String>, HostError> {
    let policy = &state.config.policy;
    if let Some(c) = named.as_deref() {
        if !policy.is_valid_company_id(c) {
            return Err(DenyReason::InvalidCompanyId.into());
        }
    }
    if who.super_admin {
        return Ok(named);
    }
    // The policy refused admins whose own company is no company ID; checked again here
    // because everything below reads it as a scope.
    if !policy.is_valid_company_id(&who.company) || named.as_deref().is_some_and(|c| c != who.company) {
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
        company_id: scope(state, who, q.company_id)?,
        subject: field("subject", q.subject)?,
        connection_id: None,
        channel: field("channel", q.channel)?,
        include_super_admins: who.super_admin,
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
    let named = input.company_id.is_some() || input.subject.is_some() || input.connection_id.is_some();
    if !named {
        return Err(HostError::BadRequest(
            "name a companyId, a subject or a connectionId".into(),
        ));
    }
    let selector = Selector {
        company_id: scope(state, &who, input.company_id)?,
        subject: field("subject", input.subject)?,
        connection_id: field("connectionId", input.connection_id)?,
        channel: None,
        include_super_admins: who.super_admin,
    };
    let replies = state
        .broker
        .control(&ControlMessage::Disconnect {
            selector: selector.clone(),
        })
        .await?;
    let (count, _) = merge::count(&replies);
    tracing::info!(admin = %who.subject, ?selector, disconnected = count, "admin disconnect");
    let body = serde_json::json!({ "disconnected": count, "hosts": replies.len() });
    Ok(reply::json(&state.config.policy, origin, 200, &body))
}

/// `POST {prefix}/admin/revoke` with `{companyId?, jti | subject, until?}`: tokens named
/// are refused at every edge until `until` (default: an hour and the JWT leeway, what a
/// dashboard token usually lives; pass the tokens' expiry when they live longer), and
/// their open streams end.
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
    let leeway = state.config.policy.jwt.leeway_secs;
    let default_until = now + DEFAULT_REVOCATION_SECS + leeway;
    let until = input.until.unwrap_or(default_until);
    if until <= now || until > now + MAX_REVOCATION_SECS {
        return Err(HostError::BadRequest(format!(
            "until must be in the future and at most {MAX_REVOCATION_SECS} seconds away"
        )));
    }
    // A super-admin names a company, or `*` for all of them; nobody else may use `*`.
    let company = match input.company_id.as_deref() {
        Some(ANY_COMPANY) if who.super_admin => ANY_COMPANY.to_owned(),
        Some(ANY_COMPANY) => return Err(DenyReason::CompanyMismatch.into()),
        _ => scope(state, &who, input.company_id)?
            .ok_or_else(|| HostError::BadRequest("companyId is required (or \"*\")".into()))?,
    };
    let entry = Revocation {
        company_id: company,
        // An issuer's clock may run up to the leeway ahead: a token it issued just
        // before this revocation can say so. A new token must be issued after that.
        issued_before: subject.is_some().then_some(now + leeway),
        jti,
        subject,
        until,
    };
    // Recorded here first, so the action carries the entry merged with any older one.
    let recorded = state.broker.admin().revocations.add(entry, now, who.super_admin)?;
    let replies = state
        .broker
        .control(&ControlMessage::Revoke {
            entry: recorded.clone(),
        })
        .await?;
    let (count, not_recorded) = merge::count(&replies);
    tracing::info!(admin = %who.subject, company = %recorded.company_id, until, disconnected = count, "admin revoke");
    let body = serde_json::json!({
        "revocation": recorded,
        "disconnected": count,
        "hosts": replies.len(),
        // Hosts whose list was full (a race at the cap): they refuse the token once they
        // reload the shared list.
        "notRecordedOn": not_recorded,
    });
    Ok(reply::json(&state.config.policy, origin, 200, &body))
}
