//! Polling: the fallback transport reads the same history with the same cursors.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::company::Company;
use super::event::{format_id, Event};
use super::limits::LimitError;
use super::stats::Counter;
use super::{now_ms, Hub};

/// The answer to a poll.
#[derive(Debug)]
pub struct PollOutcome {
    /// Events after the cursor, in order.
    pub events: Vec<Arc<Event>>,
    /// The cursor for the next poll (or `Last-Event-ID` for a stream).
    pub next: String,
    /// True when the cursor could not be honoured: refetch state, continue from `next`.
    pub reset: bool,
}

impl Hub {
    /// Events after `since` on `channels` (live head when `since` is absent).
    pub(crate) fn poll(&self, company: &str, channels: &[String], since: Option<&str>, limit: usize) -> PollOutcome {
        self.poll_company(company, &self.company(company), channels, since, limit)
    }

    fn poll_company(
        &self,
        name: &str,
        company: &Company,
        channels: &[String],
        since: Option<&str>,
        limit: usize,
    ) -> PollOutcome {
        let mut state = company.state.lock();
        state.evict_expired(self.inner.settings.tenant(name).history_max_age, now_ms());
        let head = self.inner.seq.load(Ordering::SeqCst);
        let head_id = format_id(&self.inner.epoch, head);
        match self.resume_point(&state, channels, since, head) {
            Ok(None) => PollOutcome {
                events: Vec::new(),
                next: head_id,
                reset: false,
            },
            Ok(Some(cursor)) => {
                let events = state.events_after(channels, cursor, limit.saturating_add(1));
                let truncated = events.len() > limit;
                let events: Vec<_> = events.into_iter().take(limit).collect();
                let next = match events.last() {
                    Some(last) if truncated => last.id.clone(),
                    _ => head_id,
                };
                PollOutcome {
                    events,
                    next,
                    reset: false,
                }
            }
            Err(reason) => {
                // A poll that cannot continue exactly is a reset like a stream's.
                self.count(company, Counter::Reset(reason), 1);
                PollOutcome {
                    events: Vec::new(),
                    next: head_id,
                    reset: true,
                }
            }
        }
    }

    /// Like [`Hub::poll`], but when nothing is new, waits up to `wait` for an event,
    /// holding a connection slot of `company` while it waits, like a stream: one token
    /// cannot park thousands of waiters that every publish must wake.
    pub(crate) async fn poll_wait(
        &self,
        company: &str,
        channels: &[String],
        since: Option<&str>,
        limit: usize,
        wait: Duration,
    ) -> Result<PollOutcome, LimitError> {
        let deadline = Instant::now() + wait;
        let company_arc = self.company(company);
        let mut since = since.map(str::to_owned);
        let mut slot = None;
        loop {
            let notified = company_arc.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let outcome = self.poll_company(company, &company_arc, channels, since.as_deref(), limit);
            if !outcome.events.is_empty() || outcome.reset || Instant::now() >= deadline {
                return Ok(outcome);
            }
            // A poll without a cursor waits for events after the head it just saw.
            since = Some(outcome.next);
            if slot.is_none() {
                slot = Some(self.inner.limits.acquire(company)?);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(self.poll_company(company, &company_arc, channels, since.as_deref(), limit));
            }
        }
    }
}
