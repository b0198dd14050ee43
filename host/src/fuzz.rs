//! Fuzzing entry points (feature `fuzzing`): each takes the fuzzer's bytes, runs one part
//! of the host on them and panics when a property breaks. The cargo-fuzz targets in
//! `tests/fuzz` and their bounded proptest twins in the test suite call these same
//! functions, so a finding reproduces as a plain test.

pub use crate::edge::fuzz::hostcalls;
use crate::http::{parse_head, Head};

/// The stream fast path's request-head parser on arbitrary bytes. Properties: no panic;
/// a complete head is a `GET` of at most 16 KiB whose headers all came from the input; a
/// shorter prefix of a complete head is never complete or refused (so how TCP splits it
/// changes nothing); anything past the size limit is refused, never left waiting.
pub fn request_head(data: &[u8]) {
    match parse_head(data) {
        Head::Complete(req) => {
            assert_eq!(req.method(), hyper::Method::GET);
            for (name, value) in req.headers() {
                assert!(contains(data, name.as_str().as_bytes()), "{name} not in the input");
                assert!(contains(data, value.as_bytes()), "{value:?} not in the input");
            }
            let mut headers = [httparse::EMPTY_HEADER; 100];
            if let Ok(httparse::Status::Complete(end)) = httparse::Request::new(&mut headers).parse(data) {
                assert!(end <= crate::http::MAX_HEAD_BYTES, "a {end}-byte head was accepted");
                for cut in [end / 2, end - 1] {
                    assert!(
                        matches!(parse_head(&data[..cut]), Head::Partial),
                        "a prefix of a complete head ({cut} of {end} bytes) was not partial"
                    );
                }
            }
        }
        Head::Partial => assert!(
            data.len() < crate::http::MAX_HEAD_BYTES,
            "an oversized head left waiting"
        ),
        Head::Refused(status) => assert!(status.starts_with("400") || status.starts_with("431")),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// A host configuration file and policy from arbitrary bytes (split at the first 0xff),
/// with the file references that would read from disk removed. Property: no panic; a
/// file that loads is checked as `serve` would check it.
pub fn host_config(data: &[u8]) {
    let (toml, policy) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(mut file) = crate::FileConfig::from_toml(&String::from_utf8_lossy(toml)) else {
        return;
    };
    file.policy_file = None;
    file.wasm.plugins.clear();
    let _ = file.build(Some(String::from_utf8_lossy(policy).into_owned()));
}
