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
/// Reconnects in a row whose checks failed, while Redis answered, before the companies
/// that failed are reset.
const FAILED_CHECKS: u32 = 3;

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
            for (company, f) in &mut self.companies {
                let frame = reset_frame_at(&f.cut.to_string(), ResetReason::Restarted);
                self.shared.hub.close_company(company, &frame, ResetReason::Restarted);
                f.checked(true);
            }
            self.failed_checks = 0;
            return Ok(());
        }
        self.check_history(conn).await
    }

    /// After a (re)connect to one Redis: every followed company is checked. When some
    /// checks fail the reader reconnects and checks again (the shared connection may
    /// still be reconnecting); when they keep failing while the reader's connection
    /// answers ([`FAILED_CHECKS`] times in a row), those companies get `reset`: fail
    /// closed, rather than read them unchecked or reconnect forever.
    async fn check_history(&mut self, conn: &mut Dedicated) -> RedisResult<()> {
        let all: HashSet<String> = self.companies.keys().cloned().collect();
        let failed = self.check_history_of(&all).await;
        if failed.is_empty() {
            self.failed_checks = 0;
            return Ok(());
        }
        redis::cmd("PING").query_async::<()>(conn).await?;
        self.failed_checks += 1;
        if self.failed_checks < FAILED_CHECKS {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "history checks failed",
                format!("{} companies", failed.len()),
            )));
        }
        self.failed_checks = 0;
        tracing::warn!(
            companies = failed.len(),
            "history checks keep failing; resetting those companies"
        );
        for company in failed {
            if let Some(f) = self.companies.get_mut(&company) {
                let frame = reset_frame_at(&f.cut.to_string(), ResetReason::UnknownId);
                self.shared.hub.close_company(&company, &frame, ResetReason::UnknownId);
                f.checked(true);
            }
        }
        Ok(())
    }

    /// Checks some companies, many at once; returns those whose check failed (they must
    /// be checked again before they are read).
    pub(super) async fn check_history_of(&mut self, companies: &HashSet<String>) -> HashSet<String> {
        use futures_util::StreamExt as _;
        let checks: Vec<_> = companies.iter().filter_map(|c| self.check_of(c)).collect();
        // Many at once: one by one, thousands of companies on a node that does not
        // answer would each wait out the timeout in turn.
        let results: Vec<(String, u64, CheckResult)> = futures_util::stream::iter(checks)
            .buffer_unordered(HISTORY_CHECKS)
            .collect()
            .await;
        let mut failed = HashSet::new();
        for (company, launched, result) in results {
            if !self.checked(&company, launched, result) {
                failed.insert(company);
            }
        }
        failed
    }

    /// The check of one followed company, to run (it borrows nothing).
    pub(super) fn check_of(&self, company: &str) -> Option<CheckFuture> {
        let f = self.companies.get(company)?;
        let shared = self.shared.clone();
        let company = company.to_owned();
        let channels: Vec<String> = f.channels.keys().cloned().collect();
        let keys: Vec<String> = channels.iter().map(|ch| shared.keys.stream(&company, ch)).collect();
        let (cut, verify, launched) = (f.cut, f.to_verify(&keys), self.adoption_seq);
        Some(Box::pin(async move {
            let result = check_company(&shared, &company, &channels, cut, verify).await;
            (company, launched, result)
        }))
    }

    /// Applies a check's outcome: passed (true), reset (true: its subscribers got
    /// `reset`), or to check again (false: it failed, or the company was adopted into
    /// since it started, so a reset could close subscribers it did not concern).
    pub(super) fn checked(&mut self, company: &str, launched: u64, result: CheckResult) -> bool {
        let Some(f) = self.companies.get_mut(company) else {
            return true; // no longer followed
        };
        match result {
            Ok(replay::Replay {
                reset: Some(reason),
                head,
                ..
            }) => {
                if f.adopted_at > launched {
                    return false;
                }
                tracing::warn!(
                    company,
                    reason = reason.as_str(),
                    "history moved past this host while Redis was away"
                );
                self.shared
                    .hub
                    .close_company(company, &reset_frame_at(&head.to_string(), reason), reason);
                f.checked(true);
                // Read on from the history as it is now (its subscribers are gone).
                f.cut = f.cut.min(head);
                f.last_seen = head;
                true
            }
            Ok(_) => {
                f.checked(false);
                true
            }
            Err(_) => false,
        }
    }
}

/// A check's outcome.
pub(super) type CheckResult = Result<replay::Replay, crate::backend::BackendError>;

/// A company's check: its name, the adoption count when it started, and the outcome.
pub(super) type CheckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = (String, u64, CheckResult)> + Send>>;

/// One company's history check after a reconnect: the replay check from its cut (trimmed
/// past it, or gone back before it), then whether the newest event delivered is still
/// there (a failover that lost it, although the history has since grown past it).
async fn check_company(
    shared: &Shared,
    company: &str,
    channels: &[String],
    cut: StreamId,
    verify: Option<(String, StreamId)>,
) -> CheckResult {
    let mut replay = replay::read(shared, company, channels, Cursor::After(cut), 1).await?;
    if let (None, Some((key, id))) = (replay.reset, verify) {
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
