//! Fuzzing entry points (feature `fuzzing`): each takes the fuzzer's bytes, runs one part
//! of the policy on them and panics when a property breaks. The cargo-fuzz targets in
//! `tests/fuzz` and their bounded proptest twins in the test suite call these same
//! functions, so a finding reproduces as a plain test.

use std::sync::OnceLock;

use crate::{decide, identity, Decision, Identity, PolicyConfig, Request, Route, Secret};

/// The clock every entry point runs at.
pub const NOW: u64 = 1_800_000_000;
const JWT_SECRET: &str = "fuzz-jwt-secret-that-is-32-bytes-long!!!";
const EDGE_SECRET: &str = "fuzz-edge-secret-that-is-32-bytes-long!!";
/// Field separator in the fuzzer's input.
const SEP: u8 = 0xff;

/// The policy the entry points decide with: cookie and query tokens on, a role-restricted
/// channel, at most 3 channels per stream.
pub fn config() -> &'static PolicyConfig {
    static CONFIG: OnceLock<PolicyConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let json = serde_json::json!({
            "tokens": {"authorization_header": true, "cookie": "sse_token", "query_param": "access_token"},
            "jwt": {"issuers": ["https://idp.test"], "audiences": ["sse"], "hmac_secret": JWT_SECRET},
            "channels": [{"name": "dashboard-updates"}, {"name": "evidence-updates"},
                         {"name": "audit-log", "roles": ["AUDITOR"]}],
            "limits": {"max_connections_per_company": 3, "max_channels_per_stream": 3},
            "edge": {"secret": EDGE_SECRET},
            "cors": {"allowed_origins": ["https://app.test"]}
        });
        PolicyConfig::from_json(&json.to_string()).expect("the fuzz policy is valid")
    })
}

const ROLES: [&str; 5] = ["VIEWER", "ADMIN", "SUPER_ADMIN", "PUBLISHER", "AUDITOR"];

fn valid_token(company: &str, role: &str) -> String {
    let claims = serde_json::json!({"sub": "user-1", "company_id": company, "role": role,
        "iss": "https://idp.test", "aud": "sse", "iat": NOW - 10, "exp": NOW + 600});
    crate::mint::hs256(&Secret::new(JWT_SECRET), &claims)
}

fn present(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty()).then_some(v)
}

fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == SEP).collect();
    out.resize(n, b"");
    out
}

/// `decide` over an arbitrary method, target, `Authorization`, cookie and content type.
/// The first byte can swap in a valid token (of `acme-corp`, a role it picks) in the
/// header, cookie or query, so allowed requests are reached too. Properties: no panic;
/// nothing but a preflight is allowed without a valid token; an allowed stream or poll
/// names exactly one company, which is the token's (unless super-admin), and only
/// whitelisted, distinct channels within the per-stream cap that the token's role may
/// read (a super-admin reads every channel). Returns
/// whether the request was allowed as a stream or poll (so a twin can check it got there).
pub fn decide_request(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let f = fields(rest, 5);
    let method = String::from_utf8_lossy(f[0]);
    let mut target = String::from_utf8_lossy(f[1]).into_owned();
    let mut auth = f[2].to_vec();
    let mut cookie = f[3].to_vec();
    let role = ROLES[usize::from(mode >> 4) % ROLES.len()];
    let token = valid_token("acme-corp", role);
    let injected = match mode & 0x3 {
        1 => {
            auth = format!("Bearer {token}").into_bytes();
            true
        }
        2 => {
            cookie = format!("sse_token={token}").into_bytes();
            true
        }
        3 => {
            target.push_str(if target.contains('?') { "&" } else { "?" });
            target.push_str("access_token=");
            target.push_str(&token);
            true
        }
        _ => false,
    };
    let req = Request::new(&method, &target)
        .with_authorization(present(&auth))
        .with_cookie(present(&cookie))
        .with_content_type(present(f[4]));
    let Decision::Allow(grant) = decide(config(), &req, NOW) else {
        return false;
    };
    let Some(identity) = grant.identity else {
        assert!(
            matches!(grant.route, Route::Preflight | Route::Other),
            "{:?} allowed without identity",
            grant.route
        );
        return false;
    };
    assert!(injected, "allowed with an identity but no valid token: {identity:?}");
    assert_eq!(identity.subject, "user-1");
    let subscribed = matches!(grant.route, Route::Stream | Route::Poll);
    if subscribed {
        check_subscription(&target, &identity, role, &grant.channels);
    }
    subscribed
}

fn check_subscription(target: &str, identity: &Identity, role: &str, channels: &[String]) {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let named: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "companyId")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert!(
        named.iter().all(|c| *c == identity.company),
        "{named:?} vs {identity:?}"
    );
    if !identity.super_admin {
        assert_eq!(identity.company, "acme-corp", "another company's stream");
    }
    assert!(!channels.is_empty() && channels.len() <= 3, "{channels:?}");
    for (i, c) in channels.iter().enumerate() {
        let rule = config().channel(c).expect("only whitelisted channels");
        let permitted = identity.super_admin || rule.roles.is_empty() || rule.roles.iter().any(|r| r == role);
        assert!(permitted, "{c} for {role}");
        assert!(!channels[..i].contains(c), "duplicate channel {c}");
    }
}

/// Identity headers signed for one request and body, then changed as the fuzzer says
/// (which field, what bytes, the verifier's clock). Properties: no panic; verification
/// succeeds only if every signed field reached the verifier unchanged, and then returns
/// what was signed, body digest included.
pub fn verify_identity(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (skew, rest) = rest.split_first().map_or((0, rest), |(s, r)| (*s, r));
    let who = Identity {
        subject: "user ü/1".into(),
        company: "acme-corp".into(),
        roles: vec!["VIEWER".into(), "AUDITOR".into()],
        expires_at: Some(NOW + 600),
        super_admin: false,
        token_id: String::new(),
        issued_at: None,
    };
    let channels = vec!["dashboard-updates".to_owned(), "audit-log".to_owned()];
    let (method, path) = ("GET", "/sse/stream?companyId=acme-corp&channel=dashboard-updates");
    let body = b"{}";
    let mut headers: Vec<(&str, String)> =
        identity::sign(&config().edge.secret, method, path, &who, &channels, body, NOW);
    let (mut m, mut p) = (method.to_owned(), path.to_owned());
    let value = String::from_utf8_lossy(rest).into_owned();
    let count = headers.len() as u8;
    match mode % (count + 3) {
        i if i == count => m = value,
        i if i == count + 1 => p = value,
        i if i == count + 2 => {}
        i => headers[usize::from(i)].1 = value,
    }
    let changed = m != method || p != path || {
        let original = identity::sign(&config().edge.secret, method, path, &who, &channels, body, NOW);
        original != headers
    };
    let now = NOW + u64::from(skew) - 128;
    let in_window = now + 5 >= NOW && now <= NOW + config().edge.max_skew_secs;
    let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    match identity::verify(config(), &m, &p, header, now) {
        Ok(got) => {
            assert!(
                !changed && in_window,
                "a changed or stale identity verified: {m} {p} {headers:?}"
            );
            assert_eq!((got.identity, got.channels), (who, channels));
            assert_eq!(identity::check_body(&got.body_sha256, body), Ok(()));
            assert!(
                identity::check_body(&got.body_sha256, b"{ }").is_err(),
                "another body passed"
            );
        }
        Err(e) => assert!(changed || !in_window, "an unchanged identity was refused: {e:?}"),
    }
}

/// A policy file from arbitrary bytes: no panic, and a policy that loads has warnings
/// that can be listed.
pub fn policy_config(data: &[u8]) {
    if let Ok(config) = PolicyConfig::from_json(&String::from_utf8_lossy(data)) {
        let _ = config.warnings();
    }
}
