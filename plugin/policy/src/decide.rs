//! `decide`: the routing and authorization rules shared by every edge.

use crate::cache::TokenCache;
use crate::config::{JwtRules, PolicyConfig};
use crate::decision::{Decision, DenyReason, Grant, Identity, Route};
use crate::jwt::{self, Claims, TokenError};
use crate::request::{find_token, Request};

/// Decides a request at `now` (seconds since the epoch). Connection limits are not
/// checked here: they need shared state, which the filter and the hub own.
pub fn decide(config: &PolicyConfig, req: &Request<'_>, now: u64) -> Decision {
    decide_with(config, req, now, &mut jwt::verify)
}

/// [`decide`], taking a token's claims from `cache` while it is unexpired (and adding
/// it once verified). `cache` must belong to `config` (see [`TokenCache`]).
pub fn decide_cached(config: &PolicyConfig, cache: &mut TokenCache, req: &Request<'_>, now: u64) -> Decision {
    decide_with(config, req, now, &mut |token, rules, now| {
        cache.verify(token, rules, now)
    })
}

/// [`decide`] with the token's claims from `verify` (which must give what
/// [`jwt::verify`] gives: a cache in front of it, say, shared between threads).
pub fn decide_with(
    config: &PolicyConfig,
    req: &Request<'_>,
    now: u64,
    verify: &mut dyn FnMut(&str, &JwtRules, u64) -> Result<Claims, TokenError>,
) -> Decision {
    into_decision(decide_inner(config, req, now, verify))
}

fn into_decision(result: Result<Grant, DenyReason>) -> Decision {
    match result {
        Ok(grant) => Decision::Allow(grant),
        Err(reason) => Decision::Deny(reason),
    }
}

/// Maps a method and path to a route, or `NotFound` for unknown paths under the prefix.
pub fn route_of(config: &PolicyConfig, method: &str, path: &str) -> Result<Route, DenyReason> {
    let Some(rest) = path.strip_prefix(config.routes.prefix.as_str()) else {
        return Ok(Route::Other);
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Ok(Route::Other); // "/sse-admin" is not under "/sse"
    }
    let route = match rest {
        "/stream" => Route::Stream,
        "/poll" => Route::Poll,
        "/stats" => Route::Stats,
        "/publish" => Route::Publish,
        "/admin/connections" => Route::AdminConnections,
        "/admin/disconnect" => Route::AdminDisconnect,
        "/admin/revoke" => Route::AdminRevoke,
        "/test-broadcast" if config.routes.dev_mode => Route::TestBroadcast,
        _ => return Err(DenyReason::NotFound),
    };
    let expected = match route {
        Route::Stream | Route::Poll | Route::Stats | Route::AdminConnections => "GET",
        _ => "POST",
    };
    match method {
        "OPTIONS" => Ok(Route::Preflight),
        m if m == expected || (m == "HEAD" && expected == "GET") => Ok(route),
        _ => Err(DenyReason::NotFound),
    }
}

/// Longest query string any route accepts, in bytes: room for a query token (at most
/// 8 KiB, `jwt::MAX_TOKEN_BYTES`) and every other parameter. Checked before anything else,
/// so the work done for a request is bounded before it is authorized.
pub const MAX_QUERY_BYTES: usize = 10 * 1024;

fn decide_inner(
    config: &PolicyConfig,
    req: &Request<'_>,
    now: u64,
    verify: &mut dyn FnMut(&str, &JwtRules, u64) -> Result<Claims, TokenError>,
) -> Result<Grant, DenyReason> {
    let route = route_of(config, req.method, req.path)?;
    if req.query.len() > MAX_QUERY_BYTES && route != Route::Other {
        return Err(DenyReason::InvalidRequest("query string is too long"));
    }
    let open = Grant {
        route,
        identity: None,
        channels: Vec::new(),
        token_source: None,
    };
    check_content_type(route, req.content_type)?;
    if matches!(route, Route::Other | Route::Preflight | Route::TestBroadcast) {
        return Ok(open);
    }
    if req.authorization_repeated {
        return Err(DenyReason::InvalidRequest("Authorization is sent more than once"));
    }
    let ambient = matches!(route, Route::Stream | Route::Poll);
    let (token, source) = find_token(&config.tokens, req, ambient).ok_or(DenyReason::Token(TokenError::Missing))?;
    let claims = verify(&token, &config.jwt, now).map_err(DenyReason::Token)?;
    let super_admin = claims.roles.iter().any(|r| config.roles.super_admin.contains(r));
    let has_role = |allowed: &[String]| super_admin || claims.roles.iter().any(|r| allowed.contains(r));

    let (company, channels) = match route {
        Route::Stream | Route::Poll => {
            let (company, channels) = subscription(config, req)?;
            if !super_admin && claims.company_id.as_deref() != Some(company.as_str()) {
                return Err(DenyReason::CompanyMismatch);
            }
            // `subscription` checked the whitelist; what is left is the company's tier
            // and each channel's roles.
            if !channels.iter().all(|c| config.limits.channel_allowed_for(&company, c)) {
                return Err(DenyReason::ChannelForbidden);
            }
            for rule in channels.iter().filter_map(|name| config.channel(name)) {
                if !rule.roles.is_empty() && !has_role(&rule.roles) {
                    return Err(DenyReason::ChannelForbidden);
                }
            }
            (company, channels)
        }
        r if r.is_admin() && has_role(&config.roles.admin) => {
            // An admin acts on its own company: a claim that is no company ID (empty,
            // `*`) must not reach code that reads the company as a scope.
            let own = own_company(&claims);
            if !super_admin && !config.is_valid_company_id(&own) {
                return Err(DenyReason::InvalidCompanyId);
            }
            (own, Vec::new())
        }
        Route::Publish if has_role(&config.roles.publisher) => {
            if !super_admin && claims.company_id.as_deref().is_none_or(str::is_empty) {
                return Err(DenyReason::RoleForbidden);
            }
            (own_company(&claims), Vec::new())
        }
        _ => return Err(DenyReason::RoleForbidden),
    };
    let identity = Identity {
        subject: claims.subject,
        company,
        roles: claims.roles,
        expires_at: claims.expires_at,
        super_admin,
        token_id: claims.token_id,
        issued_at: claims.issued_at,
    };
    Ok(Grant {
        route,
        identity: Some(identity),
        channels,
        token_source: Some(source),
    })
}

fn own_company(claims: &Claims) -> String {
    claims.company_id.clone().unwrap_or_default()
}

/// Parses and validates `companyId` and the `channel` list of a stream or poll. Linear
/// in the query: the distinct list never grows past `limits.max_channels_per_stream`
/// (the request is refused the moment it would), so deduplicating costs at most that
/// many comparisons per value.
pub fn subscription(config: &PolicyConfig, req: &Request<'_>) -> Result<(String, Vec<String>), DenyReason> {
    if req.query.len() > MAX_QUERY_BYTES {
        return Err(DenyReason::InvalidRequest("query string is too long"));
    }
    // One pass over the query (form_urlencoded borrows what needs no decoding).
    let max = config.limits.max_channels_per_stream as usize;
    // Repeats are forgiven (they collapse), but not without bound: each costs a comparison
    // with every channel already listed.
    let max_values = max.saturating_mul(4).max(16);
    let mut values = 0;
    let mut company: Option<std::borrow::Cow<'_, str>> = None;
    let mut channels: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(req.query.as_bytes()) {
        if key == "channel" {
            values += 1;
            if values > max_values {
                return Err(DenyReason::InvalidChannel("is repeated too often"));
            }
            let name = value;
            if channels.iter().any(|c| *c == name) {
                continue;
            }
            if channels.len() == max {
                return Err(DenyReason::InvalidChannel(
                    "list is longer than limits.max_channels_per_stream",
                ));
            }
            channels.push(name.into_owned());
        } else if key == "companyId" {
            if company.is_some() {
                return Err(DenyReason::InvalidCompanyId); // repeated: which one is meant?
            }
            company = Some(value);
        }
    }
    let Some(company) = company.filter(|c| config.is_valid_company_id(c)) else {
        return Err(DenyReason::InvalidCompanyId);
    };
    if channels.is_empty() {
        return Err(DenyReason::InvalidChannel("is missing"));
    }
    if channels.iter().any(|c| config.channel(c).is_none()) {
        return Err(DenyReason::InvalidChannel("is not whitelisted"));
    }
    Ok((company.into_owned(), channels))
}

/// Publishes (`publish`, dev `test-broadcast`) must say their body is JSON. A page on
/// another site can send a cross-site POST without a CORS preflight only with a "simple"
/// content type (`text/plain`, forms); requiring `application/json` means the browser
/// asks first, and the CORS policy answers. The admin actions take JSON the same way;
/// other routes take no body.
pub fn check_content_type(route: Route, content_type: Option<&[u8]>) -> Result<(), DenyReason> {
    if !route.has_body() && route != Route::TestBroadcast {
        return Ok(());
    }
    let essence = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(DenyReason::UnsupportedMediaType),
    }
}

/// Whether `identity` may publish to `company`: its own company, or any as super-admin.
pub fn may_publish_to(identity: &Identity, company: &str) -> bool {
    identity.super_admin || (!identity.company.is_empty() && identity.company == company)
}

/// Authorizes a publish of events to `targets` (each event's company and channel, in
/// order) under `grant` (what [`decide`] allowed, or the verified identity of a signed
/// request): one company per batch, whitelisted channels, a valid company id, and a
/// caller that may publish there. Returns the company.
///
/// The route decision (publisher role) is [`decide`]'s; this checks what only the body
/// names, so every edge that reads a publish body applies the same rule. Only the
/// dev-mode `test-broadcast` route publishes without an identity.
pub fn authorize_publish<'a>(
    config: &PolicyConfig,
    grant: &Grant,
    targets: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<&'a str, DenyReason> {
    let mut company = None;
    let mut outside_tier = false;
    for (c, channel) in targets {
        if *company.get_or_insert(c) != c {
            return Err(DenyReason::InvalidRequest(
                "all events of a batch must have the same companyId",
            ));
        }
        if config.channel(channel).is_none() {
            return Err(DenyReason::InvalidChannel("is not whitelisted"));
        }
        outside_tier |= !config.limits.channel_allowed_for(c, channel);
    }
    let company = company.ok_or(DenyReason::InvalidRequest("events must not be empty"))?;
    if !config.is_valid_company_id(company) {
        return Err(DenyReason::InvalidCompanyId);
    }
    match (&grant.identity, grant.route) {
        // Checked once the caller may publish to the company: its tier's channels are
        // none of another company's business.
        (Some(who), Route::Publish | Route::TestBroadcast) if may_publish_to(who, company) && outside_tier => {
            Err(DenyReason::ChannelForbidden)
        }
        (Some(who), Route::Publish | Route::TestBroadcast) if may_publish_to(who, company) => Ok(company),
        (Some(_), Route::Publish | Route::TestBroadcast) => Err(DenyReason::CompanyMismatch),
        (None, Route::TestBroadcast) if config.routes.dev_mode && outside_tier => Err(DenyReason::ChannelForbidden),
        (None, Route::TestBroadcast) if config.routes.dev_mode => Ok(company),
        _ => Err(DenyReason::RoleForbidden),
    }
}
