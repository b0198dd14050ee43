//! The comparison table: our figures, nchan's, the ratio and the target, from one run.

use serde_json::Value;

fn get(r: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(r, |v, k| v.get(k))?.as_f64()
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x >= 1000.0 => format!("{x:.0} {unit}"),
        Some(x) => format!("{x:.2} {unit}"),
        None => "-".into(),
    }
}

/// One row: `ours` and `nchan` paths, how the ratio is read, and the target check.
struct Row {
    what: &'static str,
    ours: &'static str,
    nchan: Option<&'static str>,
    unit: &'static str,
    target: &'static str,
    /// Whether the target is met, from (ours, nchan).
    met: fn(f64, Option<f64>) -> bool,
}

const ROWS: &[Row] = &[
    Row {
        what: "idle HTTP/1.1 stream (--idle), server RSS",
        ours: "ours.idle.rss_kib_per_stream",
        nchan: Some("nchan.idle.rss_kib_per_stream"),
        unit: "KiB",
        target: "<= 0.6x nchan",
        met: |o, n| n.is_some_and(|n| o <= 0.6 * n),
    },
    Row {
        what: "idle stream behind Envoy (h2 upstream), host RSS",
        ours: "envoy.idle.rss_kib_per_stream",
        nchan: None,
        unit: "KiB",
        target: "<= 1 KiB",
        met: |o, _| o <= 1.0,
    },
    Row {
        what: "Envoy RSS per downstream SSE connection",
        ours: "envoy.idle.proxy_rss_kib_per_stream",
        nchan: None,
        unit: "KiB",
        target: "<= 20 KiB",
        met: |o, _| o <= 20.0,
    },
    Row {
        what: "Envoy RSS per SSE stream, HTTP/2 clients (h2c, 100 streams per connection)",
        ours: "envoy.idle_h2.proxy_rss_kib_per_stream",
        nchan: None,
        unit: "KiB",
        target: "context",
        met: |_, _| true,
    },
    Row {
        what: "fan-out at max rate (--fanout): deliveries per server CPU-s",
        ours: "ours.fanout_max_rate.deliveries_per_cpu_sec",
        nchan: Some("nchan.fanout_max_rate.deliveries_per_cpu_sec"),
        unit: "",
        target: ">= 2x nchan",
        met: |o, n| n.is_some_and(|n| o >= 2.0 * n),
    },
    Row {
        what: "fan-out at max rate (--fanout): deliveries/s",
        ours: "ours.fanout_max_rate.deliveries_per_sec",
        nchan: Some("nchan.fanout_max_rate.deliveries_per_sec"),
        unit: "",
        target: "context",
        met: |_, _| true,
    },
    Row {
        what: "paced fan-out (--rate, <= 1k subs): server CPU per delivery",
        ours: "ours.fanout_fixed_rate.cpu_us_per_delivery",
        nchan: Some("nchan.fanout_fixed_rate.cpu_us_per_delivery"),
        unit: "us",
        target: "<= nchan",
        met: |o, n| n.is_some_and(|n| o <= n),
    },
    Row {
        what: "paced fan-out: server CPU per delivery; in the nchan column, the floor (one write each)",
        ours: "ours.fanout_fixed_rate.cpu_us_per_delivery",
        nchan: Some("floor.paced.cpu_us_per_delivery"),
        unit: "us",
        target: "<= 1.1x floor",
        met: |o, n| n.is_some_and(|n| o <= 1.1 * n),
    },
    Row {
        what: "paced fan-out: p99 publish-to-receive",
        ours: "ours.fanout_fixed_rate.latency_us.p99",
        nchan: Some("nchan.fanout_fixed_rate.latency_us.p99"),
        unit: "us",
        target: "<= 10 ms",
        met: |o, _| o <= 10_000.0,
    },
    Row {
        what: "reconnect storm (--storm, --behind): all caught up",
        ours: "ours.storm.caught_up_secs",
        nchan: Some("nchan.storm.caught_up_secs"),
        unit: "s",
        target: "<= 2 s",
        met: |o, _| o <= 2.0,
    },
    Row {
        what: "publish ingress, one event per request",
        ours: "ours.ingress.events_per_sec",
        nchan: Some("nchan.ingress.events_per_sec"),
        unit: "/s",
        target: "context",
        met: |_, _| true,
    },
    Row {
        what: "publish ingress, one event per request, native edge",
        ours: "native.ingress.events_per_sec",
        nchan: Some("nchan.ingress.events_per_sec"),
        unit: "/s",
        target: "context",
        met: |_, _| true,
    },
    Row {
        what: "publish ingress, batches of 100",
        ours: "ours.ingress_batched.events_per_sec",
        nchan: None,
        unit: "/s",
        target: ">= 50,000/s",
        met: |o, _| o >= 50_000.0,
    },
    Row {
        what: "stream setups/s, embedded wasm edge (HS256 each)",
        ours: "ours.connects.setups_per_sec",
        nchan: Some("nchan.connects.setups_per_sec"),
        unit: "/s",
        target: ">= 1.2x nchan (no token)",
        met: |o, n| n.is_some_and(|n| o >= 1.2 * n),
    },
    Row {
        what: "stream setups/s, native edge (HS256 each)",
        ours: "native.connects.setups_per_sec",
        nchan: Some("nchan.connects.setups_per_sec"),
        unit: "/s",
        target: ">= 1.5x nchan",
        met: |o, n| n.is_some_and(|n| o >= 1.5 * n),
    },
    Row {
        what: "many tenants (--tenants x --tenant-viewers, --tenant-rate publishes/s): server CPU",
        ours: "ours.tenants.server_cpu_secs",
        nchan: Some("nchan.tenants.server_cpu_secs"),
        unit: "s",
        target: "<= 0.6x nchan",
        met: |o, n| n.is_some_and(|n| o <= 0.6 * n),
    },
    Row {
        what: "many tenants: p99 publish-to-receive",
        ours: "ours.tenants.latency_us.p99",
        nchan: Some("nchan.tenants.latency_us.p99"),
        unit: "us",
        target: "<= nchan",
        met: |o, n| n.is_some_and(|n| o <= n),
    },
    Row {
        what: "stream setups/s through Envoy (HS256 in V8)",
        ours: "envoy.connects.setups_per_sec",
        nchan: Some("nchan.connects.setups_per_sec"),
        unit: "/s",
        target: ">= 0.5x nchan",
        met: |o, n| n.is_some_and(|n| o >= 0.5 * n),
    },
];

/// Prints the table (markdown, so it can go into the README as is).
pub(crate) fn print_table(r: &Value) {
    println!("\n| Scenario | sse-host | nchan | ratio | target | met |\n|---|---|---|---|---|---|");
    for row in ROWS {
        let Some(o) = get(r, row.ours) else { continue };
        let n = row.nchan.and_then(|p| get(r, p));
        let ratio = n.map_or("-".into(), |n| format!("{:.2}x", o / n.max(f64::MIN_POSITIVE)));
        let met = if (row.met)(o, n) { "yes" } else { "no" };
        println!(
            "| {} | {} | {} | {ratio} | {} | {met} |",
            row.what,
            fmt(Some(o), row.unit),
            fmt(n, row.unit),
            row.target
        );
    }
    let mut bad = 0.0;
    for k in ["lost", "duplicated_or_out_of_order", "foreign"] {
        for who in ["ours", "nchan", "redis"] {
            for s in ["fanout_max_rate", "fanout_fixed_rate", "storm", "tenants"] {
                bad += get(r, &format!("{who}.{s}.{k}")).unwrap_or(0.0);
            }
        }
    }
    println!("\nlost + duplicated + out of order + another tenant's, all scenarios and servers: {bad}");
}
