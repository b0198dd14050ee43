//! The reader: a task that follows, with blocking XREADs, the streams its local
//! subscribers need, and fans their entries out through the hub. A host runs
//! `redis.readers` of them, each following the companies hashed to it, each on its own
//! connection: one XREAD over 100,000 keys is one long round for Redis; four over 25,000
//! are four shorter ones, in parallel.
//!
//! Ordering and gap-freedom rest on one invariant per company: a *cut*, such that every
//! entry up to the cut in the followed streams was delivered to every subscriber attached
//! at that time, and none after it was. Each round pipelines a blocking `XREAD COUNT 1`
//! (a wake-up: when woken it may report a single stream) and a non-blocking XREAD of all
//! followed streams from their company's cut, which is an atomic snapshot. Because the
//! publish script makes a company's IDs increase in commit order, a snapshot holds every
//! entry up to its highest ID, so the company's entries are merged, delivered in ID order
//! and the cut moves to the highest ID (or to the lowest ID where a stream hit COUNT).
//!
//! A subscriber arrives with a replay that covers everything up to the head its script
//! saw. Adoption happens here, between rounds: the company's cut is lowered to that head
//! if needed and the subscriber is attached, so the next round continues exactly after
//! its replay; subscribers already attached drop the re-read entries as duplicates
//! (`Subscriber::push_event`). A round that was in flight during an adoption is not
//! delivered for that company; it is read again from the new cut.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::conn::Dedicated;
use redis::streams::StreamReadReply;
use redis::RedisResult;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod cluster;
mod history;

pub(crate) use super::follow::{Adoption, Request};
use super::follow::{Follow, Followed};
use super::keys::StreamId;
use super::replay::decode;
use super::Shared;
use crate::hub::event::Event;
use crate::hub::{Hold, Subscription};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The reader task's state.
pub(crate) struct Reader {
    shared: Arc<Shared>,
    /// Which of the host's readers (`redis.readers`): it follows the companies that
    /// [`Shared::reader_for`] sends it.
    index: usize,
    rx: mpsc::UnboundedReceiver<Request>,
    companies: HashMap<String, Followed>,
    /// Every followed stream key and its (company, channel), kept as subscribers come and
    /// go so that a round does not rebuild it.
    streams: HashMap<String, (String, String)>,
    /// Counts adoptions; a company adopted after a round began skips that round.
    adoption_seq: u64,
    /// The Redis dataset's instance mark, to notice a Redis that lost its data.
    instance: Option<String>,
    /// Reconnects in a row whose history checks failed (see `history.rs`).
    failed_checks: u32,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, index: usize, rx: mpsc::UnboundedReceiver<Request>) -> Self {
        Self {
            shared,
            index,
            rx,
            companies: HashMap::new(),
            streams: HashMap::new(),
            adoption_seq: 0,
            instance: None,
            failed_checks: 0,
        }
    }

    /// Reads until the backend is dropped; reconnects with backoff, adopting and
    /// releasing meanwhile (streams stay open; they catch up from their cuts).
    pub(crate) async fn run(mut self) {
        if self.shared.announced() {
            return self.run_cluster().await;
        }
        let mut delay = MIN_BACKOFF;
        loop {
            match self.connect().await {
                Ok((mut conn, client_id)) => {
                    delay = MIN_BACKOFF;
                    self.shared.status.reader_up(self.index, true);
                    tracing::info!(redis = %self.shared.addr, "redis reader connected");
                    match self.serve(&mut conn, client_id).await {
                        Ok(()) => return,
                        Err(e) => {
                            self.shared.status.reader_up(self.index, false);
                            self.shared.status.error(&e);
                            tracing::warn!(error = %e, "redis reader lost Redis; streams stay open, reconnecting");
                            self.freeze_all();
                        }
                    }
                }
                Err(e) => {
                    self.shared.status.error(&e);
                    tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64, "redis reader cannot connect");
                }
            }
            if !self.back_off(&mut delay).await {
                return;
            }
        }
    }

    /// The connection was lost: what was delivered must be found after the reconnect.
    fn freeze_all(&mut self) {
        for f in self.companies.values_mut() {
            f.freeze();
        }
    }

    /// Waits out `delay` (then doubles it, up to the cap) while still adopting and
    /// releasing; false when the backend was dropped meanwhile.
    async fn back_off(&mut self, delay: &mut Duration) -> bool {
        let until = Instant::now() + *delay;
        *delay = (*delay * 2).min(MAX_BACKOFF);
        loop {
            tokio::select! {
                req = self.rx.recv() => match req {
                    Some(req) => self.handle(req),
                    None => return false,
                },
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    async fn connect(&mut self) -> RedisResult<(Dedicated, i64)> {
        let timeout = self.shared.settings.block + Duration::from_secs(5);
        let mut conn = self.shared.target.dedicated(timeout).await?;
        let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await?;
        self.check_dataset(&mut conn).await?;
        Ok((conn, id))
    }

    async fn serve(&mut self, conn: &mut Dedicated, client_id: i64) -> RedisResult<()> {
        loop {
            while let Ok(req) = self.rx.try_recv() {
                self.handle(req);
            }
            let streams = self.companies.values().map(|f| f.channels.len()).sum();
            self.shared.status.following(self.index, self.companies.len(), streams);
            if self.companies.is_empty() {
                // Nothing to read: check in now and then, so health is known while idle.
                match tokio::time::timeout(self.shared.settings.block, self.rx.recv()).await {
                    Ok(Some(req)) => self.handle(req),
                    Ok(None) => return Ok(()),
                    Err(_) => redis::cmd("PING").query_async::<()>(conn).await?,
                }
                continue;
            }
            self.round(conn, client_id).await?;
        }
    }

    async fn round(&mut self, conn: &mut Dedicated, client_id: i64) -> RedisResult<()> {
        let started = self.adoption_seq;
        let (keys, ids): (Vec<&str>, Vec<String>) = self
            .streams
            .iter()
            .filter_map(|(key, (company, _))| Some((key.as_str(), self.companies.get(company)?.cut.to_string())))
            .unzip();
        let count = self.shared.settings.read_count;
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(self.shared.settings.block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&keys)
            .arg(&ids)
            .ignore();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(&keys)
            .arg(&ids);
        let read = pipe.query_async::<(Option<StreamReadReply>,)>(conn);
        tokio::pin!(read);
        let mut unblocked = false;
        let reply = loop {
            tokio::select! {
                r = &mut read => break r?.0,
                req = self.rx.recv() => {
                    let Some(req) = req else { return Ok(()) };
                    let adopt = matches!(req, Request::Adopt(..));
                    self.handle(req);
                    if adopt && !unblocked {
                        // Cut the wait short so the new subscriber's streams join now.
                        unblocked = true;
                        let _: RedisResult<i64> = redis::cmd("CLIENT")
                            .arg("UNBLOCK")
                            .arg(client_id)
                            .query_async(&mut self.shared.conn.clone())
                            .await;
                    }
                }
            }
        };
        match reply {
            Some(reply) => self.dispatch(reply, started, count),
            // Nothing was waiting: the reader is not behind.
            None => self.shared.status.read_lag(self.index, 0),
        }
        Ok(())
    }

    fn dispatch(&mut self, reply: StreamReadReply, started: u64, count: usize) {
        #[derive(Default)]
        struct Batch<'a> {
            entries: Vec<(StreamId, String, &'a str, String, String)>,
            limit: Option<StreamId>,
        }
        let mut batches: HashMap<&str, Batch<'_>> = HashMap::new();
        for stream in reply.keys {
            let Some((company, channel)) = self.streams.get(&stream.key) else {
                continue;
            };
            let batch = batches.entry(company.as_str()).or_default();
            let truncated = stream.ids.len() >= count;
            let mut last = None;
            for entry in stream.ids {
                let Some(id) = StreamId::parse(&entry.id) else { continue };
                let kind: String = entry.get("t").unwrap_or_default();
                let data: String = entry.get("d").unwrap_or_else(|| "null".into());
                last = Some(id);
                batch.entries.push((id, entry.id, channel.as_str(), kind, data));
            }
            if let (true, Some(last)) = (truncated, last) {
                batch.limit = Some(batch.limit.map_or(last, |l| l.min(last)));
            }
        }
        let mut lag = 0;
        for (company, mut batch) in batches {
            let Some(f) = self.companies.get_mut(company) else {
                continue;
            };
            if f.adopted_at > started {
                continue; // adopted meanwhile: read again from the (lowered) cut
            }
            batch.entries.sort_unstable_by_key(|e| e.0);
            let Some(max) = batch.entries.last().map(|e| e.0) else {
                continue;
            };
            let cut = batch.limit.map_or(max, |l| l.min(max));
            // IDs carry Redis's clock at publish: the age of the newest event delivered
            // is how far this read is behind (host and Redis clocks assumed close).
            lag = lag.max(crate::clock::unix_millis().saturating_sub(cut.ms));
            let events: Vec<Arc<Event>> = batch
                .entries
                .iter()
                .filter(|e| e.0 <= cut)
                .filter_map(|(_, id, channel, kind, data)| decode(id, channel, kind, data).map(Arc::new))
                .collect();
            self.shared.hub.deliver(company, &events);
            if let Some((id, _, channel, ..)) = batch.entries.iter().rev().find(|e| e.0 <= cut) {
                f.record(self.shared.keys.stream(company, channel), *id);
            }
            f.cut = f.cut.max(cut);
        }
        self.shared.status.read_lag(self.index, lag);
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::Adopt(a, reply) => self.adopt(*a, reply),
            Request::Release { company, channels } => {
                let Some(f) = self.companies.get_mut(&company) else {
                    return;
                };
                for channel in channels {
                    if let Some(n) = f.channels.get_mut(&channel) {
                        *n -= 1;
                        if *n == 0 {
                            f.channels.remove(&channel);
                            let key = self.shared.keys.stream(&company, &channel);
                            f.delivered.remove(&key);
                            self.streams.remove(&key);
                        }
                    }
                }
                if f.channels.is_empty() {
                    self.companies.remove(&company);
                }
            }
        }
    }

    fn adopt(&mut self, a: Adoption, reply: oneshot::Sender<Subscription>) {
        let f = self
            .companies
            .entry(a.company.clone())
            .or_insert_with(|| Followed::new(a.from));
        f.cut = f.cut.min(a.from);
        f.last_seen = f.last_seen.max(a.from);
        if let Some((key, id)) = a.last {
            f.record(key, id);
        }
        self.adoption_seq += 1;
        f.adopted_at = self.adoption_seq;
        for channel in &a.channels {
            let refs = f.channels.entry(channel.clone()).or_default();
            if *refs == 0 {
                let key = self.shared.keys.stream(&a.company, channel);
                self.streams.insert(key, (a.company.clone(), channel.clone()));
            }
            *refs += 1;
        }
        let follow = Follow {
            company: a.company.clone(),
            channels: a.channels.clone(),
            reader: self.shared.reader_for(&a.company).clone(),
            _remote: a.remote,
        };
        let sub = self.shared.hub.attach(
            &a.company,
            &a.channels,
            a.initial,
            a.replayed,
            a.from.to_string(),
            a.from.order(),
            a.deadline,
            a.slot,
            Some(Hold(Box::new(follow))),
            a.owner,
        );
        // If the request gave up meanwhile, dropping `sub` releases everything again.
        let _ = reply.send(sub);
    }
}
