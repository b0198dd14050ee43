//! Cluster-wide connection limits: each node's open slots per company live in the
//! company's `conns` hash, next to the node's lease on them (an expiry in Redis time,
//! renewed every third of the TTL). The acquire script ignores (and deletes) the counts
//! of nodes whose lease ran out, so a killed node's slots come back after one lease TTL.
//! Every key an operation touches is in the company's slot (`{company}`), so this works
//! on a Redis Cluster as on one Redis; each operation is its own command.
//!
//! One task writes this node's counts: acquires, releases and the periodic rewrite go
//! through it in order, in batches of commands sent at once. It keeps `applied`, what this node holds
//! in Redis by its own account, and the rewrite sets exactly that, which repairs a
//! release lost while Redis was down. (Rewriting from the hub's local counts instead
//! raced with acquires in flight: a slot counted locally and then incremented in Redis
//! was counted twice until the next rewrite, refusing streams under the limit.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::scripts::{ACQUIRE, RENEW};
use super::{BackendError, Shared};
use crate::hub::limits::LimitError;

/// Most operations in one batch.
const BATCH: usize = 512;
/// Longest a request waits for its slot. The task runs one batch at a time, so while
/// Redis does not answer, each waits out the response timeout and the queue backs up; a
/// request gives up (503) after this, and a slot granted later goes straight back.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// What the lease task is asked to do.
#[derive(Debug)]
pub(crate) enum Op {
    /// Take a slot of the company; answers with the slot (or why not). The slot itself
    /// travels back: if the request gave up meanwhile, dropping the unreceived answer
    /// gives the slot back, so a cancelled acquire cannot leak one.
    Acquire(String, oneshot::Sender<Result<Option<RemoteSlot>, String>>),
    /// Give one back.
    Release(String),
}

/// A slot counted in Redis; given back (asynchronously) when dropped.
#[derive(Debug)]
pub(crate) struct RemoteSlot {
    company: String,
    ops: mpsc::UnboundedSender<Op>,
}

impl Drop for RemoteSlot {
    fn drop(&mut self) {
        let _ = self.ops.send(Op::Release(std::mem::take(&mut self.company)));
    }
}

/// Takes a slot for `company` across all nodes, or says the company is at its limit.
/// Fails closed: without Redis, no stream opens.
pub(crate) async fn acquire(shared: &Shared, company: &str) -> Result<RemoteSlot, BackendError> {
    let (tx, rx) = oneshot::channel();
    let gone = || BackendError::Unavailable("the Redis lease task stopped".into());
    shared
        .ops
        .send(Op::Acquire(company.to_owned(), tx))
        .map_err(|_| gone())?;
    let answer = tokio::time::timeout(ACQUIRE_TIMEOUT, rx)
        .await
        .map_err(|_| BackendError::Unavailable(format!("Redis at {} did not answer in time", shared.addr)))?;
    match answer.map_err(|_| gone())? {
        Ok(Some(slot)) => Ok(slot),
        Ok(None) => Err(LimitError::Company.into()),
        Err(e) => Err(BackendError::Unavailable(format!("Redis at {}: {e}", shared.addr))),
    }
}

/// The lease task: renews the lease every third of its TTL and rewrites this node's
/// counts, and runs acquires and releases in order, in batches.
pub(crate) async fn run(shared: Arc<Shared>, mut ops: mpsc::UnboundedReceiver<Op>) {
    let mut tick = tokio::time::interval(shared.settings.lease_ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut applied: HashMap<String, u64> = HashMap::new();
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = sync(&shared, &applied, &mut reported).await {
                    shared.status.error(&e);
                    tracing::warn!(error = %e, "redis: cannot renew the node lease");
                }
            }
            Some(first) = ops.recv() => {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match ops.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
                    }
                }
                run_batch(&shared, &mut applied, batch).await;
            }
        }
    }
}

/// Sends a batch, every command at once; answers the acquires. Each command's reply is
/// its own (one failing command fails only its request). A release counts as done
/// even when Redis is unreachable: the next rewrite sets the right number.
async fn run_batch(shared: &Shared, applied: &mut HashMap<String, u64>, batch: Vec<Op>) {
    let settings = shared.hub.settings();
    // One command per operation, all in flight at once on the multiplexed connection
    // (which pipelines them anyway). Not one pipeline per company: a Redis Cluster
    // client resends a whole pipeline that meets an `ASK` mid-migration, which counted
    // slots twice; a single command redirected by `ASK` or `MOVED` never ran on the node
    // that redirected it. (The cluster client also resends a command whose connection
    // dropped or timed out, which may have run: that can count one slot twice, until the
    // next rewrite, within a third of the lease TTL.)
    let runs = batch.iter().map(|op| {
        let cmd = match op {
            Op::Acquire(company, _) => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(ACQUIRE)
                    .arg(1)
                    .arg(shared.keys.conns(company))
                    .arg(&shared.node)
                    .arg(settings.connections_for(company))
                    .arg(ttl_ms(shared));
                cmd
            }
            Op::Release(company) => {
                let mut cmd = redis::cmd("HINCRBY");
                cmd.arg(shared.keys.conns(company)).arg(&shared.node).arg(-1);
                cmd
            }
        };
        let mut conn = shared.conn.clone();
        async move { cmd.query_async::<redis::Value>(&mut conn).await }
    });
    let results = futures_util::future::join_all(runs).await;
    let mut failures = 0;
    let replies: Vec<Result<redis::Value, String>> = results
        .into_iter()
        .map(|r| {
            r.map_err(|e| {
                failures += 1;
                shared.status.error(&e);
                e.to_string()
            })
        })
        .collect();
    if failures > 0 {
        tracing::warn!(n = failures, "redis: slot operations failed");
    }
    for (i, op) in batch.into_iter().enumerate() {
        match op {
            Op::Acquire(company, answer) => {
                let reply = match &replies[i] {
                    Ok(redis::Value::Int(1)) => Ok(true),
                    Ok(redis::Value::Int(_)) => Ok(false),
                    Ok(redis::Value::ServerError(e)) => Err(format!("{e:?}")),
                    Ok(other) => Err(format!("unexpected reply {other:?}")),
                    Err(e) => Err(e.clone()),
                };
                let answer_with = match reply {
                    Ok(true) => {
                        *applied.entry(company.clone()).or_default() += 1;
                        Ok(Some(RemoteSlot {
                            company,
                            ops: shared.ops.clone(),
                        }))
                    }
                    Ok(false) => Ok(None),
                    Err(e) => {
                        shared.status.error_message(&e);
                        Err(e)
                    }
                };
                // Unreceived (the request gave up): the slot inside is dropped, which
                // queues its release.
                let _ = answer.send(answer_with);
            }
            Op::Release(company) => {
                if let Some(n) = applied.get_mut(&company) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        applied.remove(&company);
                    }
                }
            }
        }
    }
}

fn ttl_ms(shared: &Shared) -> u64 {
    shared.settings.lease_ttl.as_millis() as u64
}

/// Renews this node's lease on, and sets its count of, each company it holds slots of
/// (`applied`); deletes both from companies it no longer holds any slot of.
async fn sync(
    shared: &Shared,
    applied: &HashMap<String, u64>,
    reported: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    let expiry = format!("~{}", shared.node);
    let renewals = applied.iter().map(|(company, n)| {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RENEW)
            .arg(1)
            .arg(shared.keys.conns(company))
            .arg(&shared.node)
            .arg(*n)
            .arg(ttl_ms(shared));
        cmd
    });
    let removals = reported.iter().filter(|c| !applied.contains_key(*c)).map(|gone| {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(shared.keys.conns(gone)).arg(&shared.node).arg(&expiry);
        cmd
    });
    // One command per company, all in flight at once (each in its company's slot).
    let sent = renewals.chain(removals).map(|cmd| {
        let mut conn = shared.conn.clone();
        async move { cmd.query_async::<redis::Value>(&mut conn).await }
    });
    for result in futures_util::future::join_all(sent).await {
        result?;
    }
    *reported = applied.keys().cloned().collect();
    Ok(())
}
/// At shutdown: deletes this node's counts and leases, so its slots free at once.
pub(crate) async fn give_back(shared: &Shared) {
    let expiry = format!("~{}", shared.node);
    let companies = shared.hub.connections_by_company();
    let sent = companies.keys().map(|company| {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(shared.keys.conns(company)).arg(&shared.node).arg(&expiry);
        let mut conn = shared.conn.clone();
        async move { cmd.query_async::<redis::Value>(&mut conn).await }
    });
    let failed = futures_util::future::join_all(sent)
        .await
        .into_iter()
        .find_map(Result::err);
    if let Some(e) = failed {
        tracing::warn!(error = %e, "redis: could not give back the lease; it expires on its own");
    }
}
