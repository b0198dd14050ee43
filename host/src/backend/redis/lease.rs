//! Cluster-wide connection limits: each node's open streams per company live in the
//! company's `conns` hash, and each node holds an expiring lease. The acquire script
//! ignores (and deletes) the counts of nodes whose lease is gone, so a killed node's
//! slots come back after one lease TTL. Local counts are the truth: every renewal
//! rewrites this node's counts, which also repairs releases lost while Redis was down.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{BackendError, Shared};
use crate::hub::limits::LimitError;

/// A slot counted in Redis; given back (asynchronously) when dropped.
#[derive(Debug)]
pub(crate) struct RemoteSlot {
    company: String,
    releases: mpsc::UnboundedSender<String>,
}

impl Drop for RemoteSlot {
    fn drop(&mut self) {
        let _ = self.releases.send(std::mem::take(&mut self.company));
    }
}

/// Takes a slot for `company` across all nodes, or says the company is at its limit.
/// Fails closed: without Redis, no stream opens.
pub(crate) async fn acquire(shared: &Shared, company: &str) -> Result<RemoteSlot, BackendError> {
    let limit = shared.hub.settings().max_connections_per_company;
    let granted: i64 = shared
        .scripts
        .acquire
        .key(shared.keys.conns(company))
        .arg(&shared.node)
        .arg(limit)
        .arg(shared.keys.lease_prefix())
        .invoke_async(&mut shared.conn.clone())
        .await
        .map_err(|e| shared.unavailable(&e))?;
    if granted != 1 {
        return Err(LimitError::Company.into());
    }
    Ok(RemoteSlot {
        company: company.to_owned(),
        releases: shared.releases.clone(),
    })
}

/// Sets this node's lease (TTL from the settings).
pub(crate) async fn renew(shared: &Shared) -> redis::RedisResult<()> {
    let ttl = shared.settings.lease_ttl.as_millis() as u64;
    redis::cmd("SET")
        .arg(format!("{}{}", shared.keys.lease_prefix(), shared.node))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .query_async(&mut shared.conn.clone())
        .await
}

/// The lease task: renews the lease every third of its TTL, gives back released slots
/// in batches, and rewrites this node's counts from the local truth.
pub(crate) async fn run(shared: Arc<Shared>, mut releases: mpsc::UnboundedReceiver<String>) {
    let mut tick = tokio::time::interval(shared.settings.lease_ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Pending releases first: the counts written below already exclude them.
                while releases.try_recv().is_ok() {}
                if let Err(e) = sync(&shared, &mut reported).await {
                    shared.status.error(&e);
                    tracing::warn!(error = %e, "redis: cannot renew the node lease");
                }
            }
            Some(first) = releases.recv() => {
                let mut batch = vec![first];
                while let Ok(c) = releases.try_recv() {
                    batch.push(c);
                }
                if let Err(e) = release(&shared, &batch).await {
                    // The next renewal rewrites the counts; nothing leaks for long.
                    tracing::warn!(error = %e, n = batch.len(), "redis: cannot release slots yet");
                }
            }
        }
    }
}

/// Decrements in one pipeline; a count left at 0 is removed by the next renewal.
async fn release(shared: &Shared, companies: &[String]) -> redis::RedisResult<()> {
    if companies.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for company in companies {
        pipe.hincr(shared.keys.conns(company), &shared.node, -1).ignore();
    }
    pipe.query_async::<()>(&mut shared.conn.clone()).await
}

async fn sync(shared: &Shared, reported: &mut HashSet<String>) -> redis::RedisResult<()> {
    renew(shared).await?;
    let counts = shared.hub.connections_by_company();
    let mut pipe = redis::pipe();
    for (company, n) in &counts {
        pipe.hset(shared.keys.conns(company), &shared.node, *n).ignore();
    }
    for gone in reported.iter().filter(|c| !counts.contains_key(*c)) {
        pipe.hdel(shared.keys.conns(gone), &shared.node).ignore();
    }
    if !counts.is_empty() || !reported.is_empty() {
        pipe.query_async::<()>(&mut shared.conn.clone()).await?;
    }
    *reported = counts.into_keys().collect();
    Ok(())
}

/// At shutdown: deletes the lease and this node's counts, so its slots free at once.
pub(crate) async fn give_back(shared: &Shared) {
    let mut pipe = redis::pipe();
    pipe.del(format!("{}{}", shared.keys.lease_prefix(), shared.node))
        .ignore();
    for company in shared.hub.connections_by_company().keys() {
        pipe.hdel(shared.keys.conns(company), &shared.node).ignore();
    }
    if let Err(e) = pipe.query_async::<()>(&mut shared.conn.clone()).await {
        tracing::warn!(error = %e, "redis: could not give back the lease; it expires on its own");
    }
}
