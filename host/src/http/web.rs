//! The browser side, compiled into the binary: the demo dashboard at `/`, the React demo
//! at `/react`, the client library (the `@sse-edge/client` package's files) under `/web/`,
//! and (dev mode only) `/dev/token`.

use hyper::{Request, Response};

use super::reply::{self, Body};
use crate::state::AppState;

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// `(name, content type, contents)` for each file of `host/web`, compiled in.
macro_rules! web_files {
    ($($name:literal => $ct:expr),* $(,)?) => {
        &[$(($name, $ct, include_str!(concat!("../../web/", $name)))),*]
    };
}

const FILES: &[(&str, &str, &str)] = web_files![
    "index.html" => HTML,
    "dashboard.js" => JS,
    "react-demo.html" => HTML,
    "react-demo.js" => JS,
    "admin.html" => HTML,
    "admin.js" => JS,
    "sse-client.js" => JS,
    "connection.js" => JS,
    "dispatch.js" => JS,
    "polling.js" => JS,
    "request.js" => JS,
    "tab-share.js" => JS,
    "sse-parser.js" => JS,
    "backoff.js" => JS,
    "react.js" => JS,
    "react-bind.js" => JS,
    "react-status.js" => JS,
    "sse-client.d.ts" => TEXT,
    "sse-parser.d.ts" => TEXT,
    "react.d.ts" => TEXT,
    "package.json" => "application/json",
];

/// A file of the web client, by name.
pub(crate) fn file(name: &str) -> Option<Response<Body>> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, ct, body)| {
        let mut res = reply::text(200, ct, *body);
        res.headers_mut()
            .insert("cache-control", hyper::header::HeaderValue::from_static("no-cache"));
        res
    })
}

/// `GET /dev/token?company=C&role=R`: a dev token, only when the host runs `--dev`.
pub(crate) fn dev_token<B>(state: &AppState, req: &Request<B>) -> Option<Response<Body>> {
    let secrets = state.dev.as_ref()?;
    let q: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let company = get("company").unwrap_or("test-company");
    let role = get("role").unwrap_or("VIEWER");
    let subject = get("sub").unwrap_or("dashboard");
    let token = secrets.token(company, role, subject, std::time::Duration::from_secs(3600));
    Some(reply::json(
        &state.config.policy,
        None,
        200,
        &serde_json::json!({ "token": token }),
    ))
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// Pages without a build step import the package's modules from `/web/`: a module
    /// the package ships but the host does not serve would break them at runtime.
    #[test]
    fn serves_every_file_the_package_ships() {
        let package: serde_json::Value = serde_json::from_str(include_str!("../../web/package.json")).unwrap();
        let shipped = package["files"].as_array().expect("package.json lists its files");
        for file in shipped {
            let name = file.as_str().unwrap();
            assert!(
                FILES.iter().any(|(n, _, _)| *n == name),
                "{name} is shipped but not served"
            );
        }
        assert!(FILES.iter().any(|(n, _, _)| *n == "package.json"));
    }
}
