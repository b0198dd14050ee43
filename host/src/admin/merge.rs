//! One answer from every host's reply: `GET /sse/admin/connections` sums the hosts'
//! counters and connection counts and lists their streams; disconnects and revocations
//! add up their counts.

use serde::Serialize;
use serde_json::{Map, Value};
use sse_policy::revocation::Revocation;

use super::{ControlReply, HostListing, MAX_LISTED};
use crate::hub::admin::ConnectionInfo;

/// One host in the answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRow {
    /// Its name (epoch).
    pub host: String,
    /// True for the host that answered the request.
    #[serde(rename = "self")]
    pub this: bool,
    /// Its streams the selector names.
    pub connections: u64,
    /// False when it did not answer in time (its numbers are missing).
    pub answered: bool,
}

/// The body of `GET /sse/admin/connections`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// Every live host.
    pub hosts: Vec<HostRow>,
    /// Streams over the hosts that answered.
    pub total_connections: u64,
    /// Streams per company.
    pub connections_by_company: Value,
    /// Stream subscriptions per channel.
    pub connections_by_channel: Value,
    /// Streams per host.
    pub connections_by_host: Map<String, Value>,
    /// The streams, oldest first, at most `MAX_LISTED`.
    pub connections: Vec<ConnectionInfo>,
    /// True when a host or the total had more than could be listed.
    pub truncated: bool,
    /// Events retained for resume (memory backend; Redis keeps history itself).
    pub history_size: u64,
    /// Publish and delivery rates, summed over hosts.
    pub rates: Rates,
    /// Counters summed over hosts.
    pub counters: Value,
    /// Revocations in force.
    pub revocations: Vec<Revocation>,
}

/// Events per second.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    /// Published.
    pub published_per_sec: f64,
    /// Delivered to streams.
    pub delivered_per_sec: f64,
}

/// Merges the listings of `replies` (host, reply; `None`: no answer). `me` is the host
/// answering the request.
pub fn listing(me: &str, replies: Vec<(String, Option<ControlReply>)>, revocations: Vec<Revocation>) -> Listing {
    let mut out = Listing {
        hosts: Vec::new(),
        total_connections: 0,
        connections_by_company: Value::Object(Map::new()),
        connections_by_channel: Value::Object(Map::new()),
        connections_by_host: Map::new(),
        connections: Vec::new(),
        truncated: false,
        history_size: 0,
        rates: Rates::default(),
        counters: Value::Object(Map::new()),
        revocations,
    };
    for (host, reply) in replies {
        let Some(ControlReply::Listed(l)) = reply else {
            out.hosts.push(HostRow {
                this: host == me,
                host,
                connections: 0,
                answered: false,
            });
            continue;
        };
        let HostListing {
            stats,
            connections,
            truncated,
            published_per_sec,
            delivered_per_sec,
            ..
        } = *l;
        let n = stats["totalConnections"].as_u64().unwrap_or(0);
        out.total_connections += n;
        out.history_size += stats["historySize"].as_u64().unwrap_or(0);
        add(&mut out.connections_by_company, &stats["connectionsByCompany"]);
        add(&mut out.connections_by_channel, &stats["connectionsByChannel"]);
        add(&mut out.counters, &stats["counters"]);
        out.connections_by_host.insert(host.clone(), n.into());
        out.rates.published_per_sec += published_per_sec;
        out.rates.delivered_per_sec += delivered_per_sec;
        out.truncated |= truncated;
        out.connections.extend(connections);
        out.hosts.push(HostRow {
            this: host == me,
            host,
            connections: n,
            answered: true,
        });
    }
    out.connections.sort_by_key(|c| c.opened_at);
    if out.connections.len() > MAX_LISTED {
        out.connections.truncate(MAX_LISTED);
        out.truncated = true;
    }
    out.hosts.sort_by(|a, b| b.this.cmp(&a.this).then(a.host.cmp(&b.host)));
    out
}

/// Adds `from` into `into`: numbers are summed, objects merged key by key.
fn add(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                add(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot @ Value::Null, v) => *slot = v.clone(),
        (Value::Number(a), Value::Number(b)) => {
            *a = (a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0)).into();
        }
        _ => {}
    }
}

/// The total of disconnect or revoke counts, and the hosts that could not record a
/// revocation (their list was full).
pub fn count(replies: &[(String, Option<ControlReply>)]) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut full = Vec::new();
    for (host, reply) in replies {
        match reply {
            Some(ControlReply::Disconnected { count }) => total += count,
            Some(ControlReply::Revoked { count: Some(c) }) => total += c,
            Some(ControlReply::Revoked { count: None }) => full.push(host.clone()),
            _ => {}
        }
    }
    (total, full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counters_and_maps_are_summed_across_hosts() {
        let mut a = json!({"x": 1, "m": {"acme": 2}});
        add(&mut a, &json!({"x": 2, "m": {"acme": 1, "beta": 4}}));
        assert_eq!(a, json!({"x": 3, "m": {"acme": 3, "beta": 4}}));
    }
}
