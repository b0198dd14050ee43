//! What a reader checks after it (re)connects, before it reads on: that Redis kept its
//! data, and that each followed company's history did not move past what this host
//! delivered while it was away (trimmed, gone back at a failover, or missing an event
//! this host delivered). Any company that fails gets `reset`.

use std::collections::HashSet;

use redis::RedisResult;

use super::super::conn::Dedicated;
use super::super::keys::StreamId;
use super::super::replay::{self, Cursor};
use super::super::Shared;
use super::Reader;
use crate::hub::event::{reset_frame_at, ResetReason};

/// History checks in flight at once after a reconnect.
const HISTORY_CHECKS: usize = 256;

impl Reader {
    /// After a (re)connect: if Redis lost its data, every open stream gets `reset`
    /// (restarted); otherwise any company whose history was trimmed past its cut while
    /// we were away gets `reset` (too_old). Everyone else just catches up.
    pub(super) async fn check_dataset(&mut self, conn: &mut Dedicated) -> RedisResult<()> {
        let mut mark = [0u8; 8];
        let _ = getrandom::getrandom(&mut mark);
        let mark: String = mark.iter().map(|b| format!("{b:02x}")).collect();
        let key = self.shared.keys.instance();
        let (current,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&mark)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key)
            .query_async(conn)
            .await?;
        let lost = self.instance.as_ref().is_some_and(|known| *known != current);
        self.instance = Some(current);
        if lost {
            self.shared.status.data_lost();
            tracing::error!("redis lost its data (restart without persistence?); resetting every stream");
            for (company, f) in &self.companies {
                let frame = reset_frame_at(&f.cut.to_string(), ResetReason::Restarted);
                self.shared.hub.close_company(company, &frame, ResetReason::Restarted);
            }
            return Ok(());
        }
        self.check_history().await
    }

    /// After a (re)connect: any company whose history moved past its cut while the
    /// reader was away (trimmed, or gone back in time at a failover) gets `reset`.
    /// Fails when any company's check failed: the reader reconnects and checks again
    /// rather than read a company whose history may have gone back unnoticed.
    pub(super) async fn check_history(&mut self) -> RedisResult<()> {
        let all: HashSet<String> = self.companies.keys().cloned().collect();
        let failed = self.check_history_of(&all).await;
        if failed.is_empty() {
            return Ok(());
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "history checks failed",
            format!("{} companies", failed.len()),
        )))
    }

    /// [`Reader::check_history`] for some companies; returns those whose check failed
    /// (they must be checked again before they are read).
    pub(super) async fn check_history_of(&self, companies: &HashSet<String>) -> HashSet<String> {
        use futures_util::StreamExt as _;
        type Check = (String, StreamId, Vec<String>, Option<(String, StreamId)>);
        let followed: Vec<Check> = self
            .companies
            .iter()
            .filter(|(c, _)| companies.contains(*c))
            .map(|(c, f)| (c.clone(), f.cut, f.channels.keys().cloned().collect(), f.last.clone()))
            .collect();
        let checks = followed.into_iter().map(|(company, cut, channels, last)| {
            let shared = self.shared.clone();
            async move {
                let result = check_company(&shared, &company, &channels, cut, last).await;
                (company, result)
            }
        });
        // Many at once: one by one, thousands of companies on a node that does not
        // answer would each wait out the timeout in turn.
        let mut checks = futures_util::stream::iter(checks).buffer_unordered(HISTORY_CHECKS);
        let mut failed = HashSet::new();
        while let Some((company, result)) = checks.next().await {
            match result {
                Ok(replay::Replay {
                    reset: Some(reason),
                    head,
                    ..
                }) => {
                    tracing::warn!(
                        company,
                        reason = reason.as_str(),
                        "history moved past this host while Redis was away"
                    );
                    self.shared
                        .hub
                        .close_company(&company, &reset_frame_at(&head.to_string(), reason), reason);
                }
                Ok(_) => {}
                Err(_) => {
                    failed.insert(company);
                }
            }
        }
        failed
    }
}

/// One company's history check after a reconnect: the replay check from its cut (trimmed
/// past it, or gone back before it), then whether the newest event delivered is still
/// there (a failover that lost it, although the history has since grown past it).
async fn check_company(
    shared: &Shared,
    company: &str,
    channels: &[String],
    cut: StreamId,
    last: Option<(String, StreamId)>,
) -> Result<replay::Replay, crate::backend::BackendError> {
    let mut replay = replay::read(shared, company, channels, Cursor::After(cut), 1).await?;
    // Only on a stream still followed: one no longer followed may be trimmed past it.
    let last = last.filter(|(key, _)| channels.iter().any(|ch| shared.keys.stream(company, ch) == *key));
    if let (None, Some((key, id))) = (replay.reset, last) {
        let id = id.to_string();
        let mut conn = shared.conn.clone();
        let found: Vec<redis::Value> = redis::cmd("XRANGE")
            .arg(&key)
            .arg(&id)
            .arg(&id)
            .query_async(&mut conn)
            .await
            .map_err(|e| shared.unavailable(&e))?;
        if found.is_empty() {
            tracing::warn!(company, id, "an event this host delivered is gone (lost in a failover)");
            replay.reset = Some(ResetReason::UnknownId);
        }
    }
    Ok(replay)
}
