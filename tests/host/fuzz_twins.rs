//! Bounded twins of the cargo-fuzz targets in `tests/fuzz`: the same entry points
//! (`sse_host::fuzz`, `sse_policy::fuzz`) and properties, fed by proptest for a fixed
//! number of cases on every test run, with inputs shaped to reach past the first check.
//! The long runs and their figures: `tests/fuzz/README.md`.

use proptest::collection::vec;
use proptest::prelude::*;

/// A request head from plausible parts, then damaged at one place.
fn head() -> impl Strategy<Value = Vec<u8>> {
    let header = ("[A-Za-z-]{1,12}", "[ -~]{0,40}").prop_map(|(n, v)| format!("{n}: {v}\r\n"));
    (
        "(GET|POST|HEAD|get)",
        "/sse/stream(\\?[ -~&&[^ ]]{0,60})?",
        "HTTP/1\\.[01]",
        vec(header, 0..8),
        any::<(u16, u8)>(),
        proptest::bool::ANY,
    )
        .prop_map(|(method, target, version, headers, (at, byte), damage)| {
            let mut head = format!("{method} {target} {version}\r\n{}\r\n", headers.concat()).into_bytes();
            if damage {
                let at = usize::from(at) % head.len();
                head[at] = byte;
            }
            head
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn request_head(data in prop_oneof![head(), vec(any::<u8>(), 0..600)]) {
        sse_host::fuzz::request_head(&data);
    }

    /// Past the 16 KiB head limit, complete or not: refused, never accepted or left waiting.
    #[test]
    fn oversized_request_head(len in 16_384usize..20_000, cut in any::<bool>()) {
        let mut data = b"GET /sse/stream?companyId=acme HTTP/1.1\r\nx-pad: ".to_vec();
        data.resize(len, b'a');
        if cut {
            data.extend_from_slice(b"\r\n\r\n"); // complete, but too large
        }
        sse_host::fuzz::request_head(&data);
    }

    #[test]
    fn decide_bytes(data in vec(any::<u8>(), 0..400)) {
        let _ = sse_policy::fuzz::decide_request(&data);
    }

    #[test]
    fn identity(mode in any::<u8>(), skew in any::<u8>(), value in "[ -~]{0,60}") {
        let data = [&[mode, skew][..], value.as_bytes()].concat();
        sse_policy::fuzz::verify_identity(&data);
    }

    #[test]
    fn policy_config(data in vec(any::<u8>(), 0..400)) {
        sse_policy::fuzz::policy_config(&data);
    }

    #[test]
    fn host_config(toml in "([a-z_.\\[\\]]{1,16} = [ -~]{0,16}\n){0,6}", policy in "[ -~]{0,80}") {
        let data = [toml.as_bytes(), policy.as_bytes()].join(&0xff);
        sse_host::fuzz::host_config(&data);
    }
}

/// A request the policy may allow: a method, a route, query parameters mostly from the
/// names and values that matter, a token place, a content type.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let company = prop_oneof![
        4 => Just("companyId=acme-corp".to_owned()),
        1 => Just("companyId=beta-inc".to_owned()),
        1 => Just("companyId=ACME%2Dcorp".to_owned()),
        1 => Just(String::new()),
    ];
    let param = prop_oneof![
        Just("companyId=acme-corp".to_owned()),
        Just("channel=dashboard-updates".to_owned()),
        Just("channel=dashboard-updates".to_owned()),
        Just("channel=evidence-updates".to_owned()),
        Just("channel=audit-log".to_owned()),
        Just("channel=nope".to_owned()),
        "[a-zA-Z_]{1,8}=[a-z0-9%-]{0,10}",
    ];
    (
        any::<u8>(),
        "(GET|GET|GET|POST|OPTIONS|PUT)",
        "/sse/(stream|stream|poll|stats|publish)",
        company,
        vec(param, 0..5),
        "[ -~]{0,40}",
        "[ -~]{0,40}",
        "(application/json|text/plain|)",
    )
        .prop_map(|(mode, method, path, company, params, auth, cookie, content_type)| {
            let target = format!("{path}?{company}&{}", params.join("&"));
            let fields = [
                method.as_bytes(),
                target.as_bytes(),
                auth.as_bytes(),
                cookie.as_bytes(),
                content_type.as_bytes(),
            ];
            let mut data = vec![mode];
            data.extend(fields.join(&0xff));
            data
        })
}

/// `decide` on shaped requests; some must be allowed, or the grant checks ran on nothing.
/// Seeded, so the share allowed (26 of 2000 today) is the same on every run.
#[test]
fn decide() {
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let config = ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let allowed = std::cell::Cell::new(0);
    runner
        .run(&request(), |data| {
            allowed.set(allowed.get() + usize::from(sse_policy::fuzz::decide_request(&data)));
            Ok(())
        })
        .unwrap();
    assert!(
        allowed.get() > 10,
        "only {} of 2000 shaped requests were allowed",
        allowed.get()
    );
}

proptest! {
    // Each case instantiates a module: fewer cases.
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn hostcalls(data in vec(any::<u8>(), 0..2048)) {
        sse_host::fuzz::hostcalls(&data);
    }
}
