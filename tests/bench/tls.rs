//! The cost of TLS: the host on its own TLS and Envoy's TLS listener, each next to its
//! plain figure from the same run.

use anyhow::Result;
use serde_json::{json, Map, Value};

use crate::host::{self, HostOptions, HostProcess};
use crate::{ours, scenarios, Args};

/// The cost of TLS: idle memory and setups/s of the native edge in plain HTTP and on its
/// own TLS (HTTP/1.1 over TLS: what the bench client speaks), and through Envoy's TLS
/// listener, each next to its plain figure from the same run.
pub(crate) async fn suite(a: &Args, plain: &HostOptions<'_>, skip_envoy: bool) -> Result<Value> {
    let dir = sse_tests::TempDir::new("bench-tls");
    let cert = sse_tests::tls::DevCert::new(&dir.0, "host");
    let client = sse_tests::tls::connector(&cert.der, &[b"http/1.1"]);
    let mut out = Map::new();
    {
        println!("sse-host, native edge, plain HTTP (the baseline for TLS)");
        let host = HostProcess::start(&a.host_bin, plain).await?;
        let t = ours("native", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        let idle = scenarios::idle(&t, a.idle).await?;
        let connects = scenarios::connect_rate(&t, a.connects).await?;
        out.insert("native_plain".into(), json!({"idle": idle, "connects": connects}));
    }
    {
        println!("sse-host, native edge, plain HTTP served by hyper alone (fast path off: what TLS streams use)");
        let opts = HostOptions {
            fast_path: false,
            ..*plain
        };
        let host = HostProcess::start(&a.host_bin, &opts).await?;
        let t = ours("native-hyper", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        let idle = scenarios::idle(&t, a.idle).await?;
        out.insert("native_plain_hyper".into(), json!({"idle": idle}));
    }
    {
        println!("sse-host, native edge, its own TLS (rustls; HTTP/1.1 fast path bypassed)");
        let opts = HostOptions {
            tls: Some((&cert.cert, &cert.key)),
            ..*plain
        };
        let host = HostProcess::start(&a.host_bin, &opts).await?;
        let mut t = ours("native-tls", &host.addr, &host.addr, vec![host.pid()], Vec::new());
        t.tls = Some(client.clone());
        let idle = scenarios::idle(&t, a.idle).await?;
        let connects = scenarios::connect_rate(&t, a.connects).await?;
        out.insert("native_tls".into(), json!({"idle": idle, "connects": connects}));
    }
    if !skip_envoy {
        println!("sse-host behind Envoy's TLS listener (V8 filter, HTTP/2 upstream)");
        let host = HostProcess::start(
            &a.host_bin,
            &HostOptions {
                edge: "envoy",
                ..*plain
            },
        )
        .await?;
        let envoy = sse_tests::envoy::Envoy::start(host.addr.parse()?, &host::policy()).await;
        let front = envoy.tls_addr.to_string();
        let mut t = ours(
            "envoy-tls",
            &front,
            &envoy.addr.to_string(),
            vec![host.pid()],
            vec![envoy.pid()],
        );
        t.tls = Some(sse_tests::tls::connector(&envoy.cert.der, &[b"http/1.1"]));
        let idle = scenarios::idle(&t, a.idle).await?;
        let connects = scenarios::connect_rate(&t, a.connects).await?;
        out.insert("envoy_tls".into(), json!({"idle": idle, "connects": connects}));
    }
    Ok(Value::Object(out))
}
