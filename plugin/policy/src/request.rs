//! What the policy sees of a request, where its token is, and how the token is removed
//! before the request travels on.

use crate::config::TokenSources;

/// The request attributes a decision needs. Borrowed, so the filter and the host can
/// build it from their own header types without copying.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Raw query string without the leading `?` (empty when none).
    pub query: &'a str,
    /// The `Authorization` header value, if any.
    pub authorization: Option<&'a [u8]>,
    /// The `Cookie` header value(s) joined with `; `, if any.
    pub cookie: Option<&'a [u8]>,
    /// The `Content-Type` header value, if any (publishes must be JSON).
    pub content_type: Option<&'a [u8]>,
    /// `Authorization` was sent more than once. Edges and proxies disagree on which copy
    /// counts (the first, the last, both joined), so a route that reads tokens refuses it.
    pub authorization_repeated: bool,
}

impl<'a> Request<'a> {
    /// Splits a request target (`/sse/stream?companyId=a`) into path and query.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method,
            path,
            query,
            authorization: None,
            cookie: None,
            content_type: None,
            authorization_repeated: false,
        }
    }

    /// Adds the `Authorization` header.
    pub fn with_authorization(mut self, value: Option<&'a [u8]>) -> Self {
        self.authorization = value;
        self
    }

    /// Adds every `Authorization` header value, in order: the first is the header, and
    /// more than one marks the request (see [`Request::authorization_repeated`]).
    pub fn with_authorization_values(mut self, mut values: impl Iterator<Item = &'a [u8]>) -> Self {
        self.authorization = values.next();
        self.authorization_repeated = values.next().is_some();
        self
    }

    /// Adds the `Cookie` header.
    pub fn with_cookie(mut self, value: Option<&'a [u8]>) -> Self {
        self.cookie = value;
        self
    }

    /// Adds the `Content-Type` header.
    pub fn with_content_type(mut self, value: Option<&'a [u8]>) -> Self {
        self.content_type = value;
        self
    }

    /// Values of query parameter `name`, percent-decoded, in order, decoded one at a time
    /// (a caller that stops early does no more work).
    pub fn query_values<'n>(&self, name: &'n str) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + 'n
    where
        'a: 'n,
    {
        form_urlencoded::parse(self.query.as_bytes())
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Where a token was found; the edge strips it from there before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Header,
    /// The configured cookie.
    Cookie,
    /// The configured query parameter.
    Query,
}

/// Finds the token in the enabled sources, in order: header, cookie, query.
/// A present-but-unusable `Authorization` header (wrong scheme, not UTF-8) does not fall
/// through to other sources: the client meant to authenticate with it.
///
/// `ambient`: whether the cookie and query sources count. A browser attaches cookies to
/// requests any site makes, and a URL token travels in links; both are fit only for
/// reading streams and polls (what a native EventSource can send). Anything that acts
/// (publish) or reveals (stats) needs the `Authorization` header, which another site's
/// page cannot set without a CORS preflight that the policy refuses.
pub fn find_token(sources: &TokenSources, req: &Request<'_>, ambient: bool) -> Option<(String, TokenSource)> {
    if sources.authorization_header {
        if let Some(value) = req.authorization {
            let value = std::str::from_utf8(value).ok()?.trim();
            let (scheme, token) = value.split_once(' ')?;
            return scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| (token.trim().to_owned(), TokenSource::Header));
        }
    }
    if !ambient {
        return None;
    }
    if let (Some(name), Some(cookie)) = (&sources.cookie, req.cookie) {
        if let Some(token) = std::str::from_utf8(cookie).ok().and_then(|c| cookie_value(c, name)) {
            return Some((token.to_owned(), TokenSource::Cookie));
        }
    }
    if let Some(name) = &sources.query_param {
        if let Some(token) = req.query_values(name).next() {
            return Some((token.into_owned(), TokenSource::Query));
        }
    }
    None
}

fn cookie_value<'c>(header: &'c str, name: &str) -> Option<&'c str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The query string with every `name=` parameter removed, other parameters untouched.
pub fn strip_query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or("");
            let decoded: String = form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            !pair.is_empty() && decoded != name
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The cookie header with cookie `name` removed; `None` when nothing is left.
pub fn strip_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split('=').next().map(str::trim) != Some(name))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> TokenSources {
        TokenSources {
            authorization_header: true,
            cookie: Some("sse_token".into()),
            query_param: Some("access_token".into()),
        }
    }

    #[test]
    fn header_wins_over_cookie_and_query() {
        let req = Request::new("GET", "/sse/stream?access_token=q")
            .with_authorization(Some(b"Bearer h"))
            .with_cookie(Some(b"a=1; sse_token=c"));
        assert_eq!(
            find_token(&sources(), &req, true),
            Some(("h".into(), TokenSource::Header))
        );
        let req = req.with_authorization(None);
        assert_eq!(
            find_token(&sources(), &req, true),
            Some(("c".into(), TokenSource::Cookie))
        );
        let req = req.with_cookie(None);
        assert_eq!(
            find_token(&sources(), &req, true),
            Some(("q".into(), TokenSource::Query))
        );
    }

    #[test]
    fn query_token_is_ignored_unless_enabled() {
        let mut s = sources();
        s.query_param = None;
        let req = Request::new("GET", "/sse/stream?access_token=q");
        assert_eq!(find_token(&s, &req, true), None);
    }

    #[test]
    fn non_bearer_authorization_is_not_a_token() {
        let req = Request::new("GET", "/")
            .with_authorization(Some(b"Basic abc"))
            .with_cookie(Some(b"sse_token=c"));
        assert_eq!(find_token(&sources(), &req, true), None);
    }

    #[test]
    fn stripping_removes_only_the_token() {
        assert_eq!(
            strip_query_param("companyId=a&access_token=t&channel=x", "access_token"),
            "companyId=a&channel=x"
        );
        assert_eq!(strip_query_param("access%5Ftoken=t&b=2", "access_token"), "b=2");
        assert_eq!(strip_query_param("access_token=t", "access_token"), "");
        assert_eq!(
            strip_cookie("a=1; sse_token=t; b=2", "sse_token").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_cookie("sse_token=t", "sse_token"), None);
    }
}
