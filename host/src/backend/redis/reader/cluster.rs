//! The reader on a Redis Cluster. A blocking XREAD cannot span slots, and a company's
//! streams are one slot, so this reader waits on announcements instead: the publish
//! script PUBLISHes the company's meta key on `{prefix}:notify` (plain pub/sub reaches
//! subscribers on every node), and the reader XREADs the followed streams of each
//! announced company from its cut, one single-slot command per company, all in flight
//! at once, through the cluster connection (which follows `MOVED`/`ASK`: a slot migrated
//! under load is read where it now lives). The cut invariant of the standalone reader
//! holds per company, so ordering, deduplication and adoption are the same code.
//!
//! Announcements are at most once (a pub/sub message is lost while the subscriber is
//! reconnecting): every company is read when the subscription is (re)made. Every
//! `redis.block_ms` the reader also announces a heartbeat to itself: while it comes back,
//! the subscription is live (and pub/sub on a live connection loses nothing); when one is
//! late, every company is read again; after three, the subscription is made anew.
//!
//! The same reader serves one Redis with `redis.reader = "announced"`: a blocking XREAD
//! over 100,000 keys costs Redis the same whether one event or none arrived.
//!
//! A company whose read fails (its master failing over, its slot mid-migration) is
//! retried at the next tick, after its history is checked again (a promoted replica may
//! be behind what was delivered: `reset`, never a silent gap); the others go on.

use std::collections::HashSet;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use redis::streams::StreamReadReply;
use redis::RedisResult;

use super::super::conn::Dedicated;
use super::super::follow::Followed;
use super::super::keys::StreamId;
use super::{Reader, Request};

impl Reader {
    /// Reads until the backend is dropped; resubscribes with backoff.
    pub(crate) async fn run_cluster(mut self) {
        let mut delay = super::MIN_BACKOFF;
        loop {
            match self.serve_cluster().await {
                Ok(()) => return,
                Err(e) => {
                    self.shared.status.reader_up(self.index, false);
                    self.shared.status.error(&e);
                    tracing::warn!(error = %e, "redis cluster reader lost its subscription; streams stay open, reconnecting");
                    self.freeze_all();
                }
            }
            if !self.back_off(&mut delay).await {
                return;
            }
        }
    }

    async fn serve_cluster(&mut self) -> RedisResult<()> {
        // Behind Sentinel: the subscription is on the master; when it moves, start over.
        let (seeds, mut moves) = self.shared.target.announcement_nodes().await?;
        let mut notes = super::super::conn::subscribe(&seeds, &self.shared.keys.notify()).await?;
        self.shared.status.reader_up(self.index, true);
        tracing::info!("redis announced reader subscribed");
        // Reads may take long (a catch-up of read_count entries per stream): not on the
        // shared connection.
        let block = self.shared.settings.block;
        let mut conn = self
            .shared
            .target
            .dedicated(block + std::time::Duration::from_secs(5))
            .await?;
        let mut work = Work::default();
        if self.shared.target.is_cluster() {
            // Each company is checked (at the first tick, right away) before it is read:
            // its master may have failed over behind what was delivered.
            work.unchecked = self.companies.keys().cloned().collect();
        } else {
            // One Redis: notice a Redis that lost its data too (`restarted`).
            self.check_dataset(&mut conn).await?;
            // Whatever was announced while unsubscribed: read everyone once.
            work.dirty = self.companies.keys().cloned().collect();
        }
        self.report_following();
        let mut safety = tokio::time::interval(block);
        safety.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let beat = format!("beat:{}:{}", self.shared.node, self.index);
        let mut missed_beats = 0u32;
        loop {
            // Reads and checks stay in flight while the loop goes on: a company whose
            // node does not answer holds up only itself, never the others' events or
            // adoptions.
            self.launch_reads(&conn, &mut work);
            tokio::select! {
                Some(done) = work.reads.next(), if !work.reads.is_empty() => {
                    work.reading.remove(&done.company);
                    self.read_done(done, &mut work)?;
                }
                Some((company, launched, result)) = work.checks.next(), if !work.checks.is_empty() => {
                    work.checking.remove(&company);
                    if self.checked(&company, launched, result) {
                        // Read it now: whatever was announced while it waited.
                        work.dirty.insert(company);
                    } else {
                        work.unchecked.insert(company);
                    }
                }
                req = self.rx.recv() => {
                    let Some(req) = req else { return Ok(()) };
                    self.requested(req, &mut work);
                    // Take every request already queued, then report once.
                    while let Ok(req) = self.rx.try_recv() {
                        self.requested(req, &mut work);
                    }
                    self.report_following();
                }
                note = notes.next() => {
                    let Some(note) = note else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "the announcement subscription closed")));
                    };
                    self.announced(&note, &beat, &mut missed_beats, &mut work);
                    // Take every announcement already here before reading.
                    while let Some(Some(note)) = futures_util::FutureExt::now_or_never(notes.next()) {
                        self.announced(&note, &beat, &mut missed_beats, &mut work);
                    }
                }
                () = super::super::conn::moved(&mut moves) => {
                    return Err(redis::RedisError::from((redis::ErrorKind::Io, "the Redis master moved")));
                }
                _ = safety.tick() => {
                    missed_beats += 1;
                    if missed_beats > 3 {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "the announcement subscription went quiet")));
                    }
                    // While the heartbeat comes back the subscription is live and pub/sub
                    // on a live connection loses nothing: read everyone only when a beat
                    // is late (following 100,000 streams, a sweep per tick costs).
                    if missed_beats >= 2 {
                        let all: Vec<String> = self.companies.keys().filter(|c| !work.held(c)).cloned().collect();
                        work.dirty.extend(all);
                    } else if work.dirty.is_empty() && work.reads.is_empty() {
                        self.shared.status.read_lag(self.index, 0); // idle: not behind
                    }
                    // Not awaited: a node that does not answer must not hold up the loop.
                    let (mut shared_conn, notify, beat) = (self.shared.conn.clone(), self.shared.keys.notify(), beat.clone());
                    tokio::spawn(async move {
                        let _: RedisResult<i64> = redis::cmd("PUBLISH").arg(notify).arg(beat).query_async(&mut shared_conn).await;
                    });
                    // Companies whose read failed: check their history first (a failover
                    // may have moved it back); a passing check makes them dirty.
                    for company in std::mem::take(&mut work.unchecked) {
                        if let Some(check) = self.check_of(&company) {
                            work.checking.insert(company);
                            work.checks.push(check);
                        }
                    }
                }
            }
        }
    }

    /// One request from the backend; an adopted company is read again (from its
    /// lowered cut), unless it awaits a history check: it is read after it.
    fn requested(&mut self, req: Request, work: &mut Work) {
        if let Request::Adopt(a, _) = &req {
            if !work.held(&a.company) {
                work.dirty.insert(a.company.clone());
            }
        }
        self.handle(req);
    }

    /// What this reader follows, for `/sse/stats` (when it changes: not per event).
    fn report_following(&self) {
        let streams = self.companies.values().map(|f| f.channels.len()).sum();
        self.shared.status.following(self.index, self.companies.len(), streams);
    }

    /// One message: this reader's heartbeat, or a publish's announcement (a company it
    /// follows, not awaiting a history check, becomes dirty).
    fn announced(&self, note: &redis::Msg, beat: &str, missed_beats: &mut u32, work: &mut Work) {
        let Ok(meta) = note.get_payload::<String>() else { return };
        if meta == beat {
            *missed_beats = 0;
            return;
        }
        // `{prefix}:{company}:meta`: the company is between the first `{` and its `}`.
        let company = meta
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once("}:"))
            .map(|(c, _)| c);
        if let Some(company) = company.filter(|c| self.companies.contains_key(*c) && !work.held(c)) {
            work.dirty.insert(company.to_owned());
        }
    }

    /// Starts one XREAD per dirty company without one in flight (its followed streams
    /// from its cut); a company read meanwhile stays dirty and is read again after.
    fn launch_reads(&self, conn: &Dedicated, work: &mut Work) {
        let count = self.shared.settings.read_count;
        let started = self.adoption_seq;
        let Work {
            dirty, reads, reading, ..
        } = work;
        dirty.retain(|company| {
            if reading.contains(company) {
                return true;
            }
            let Some(f) = self.companies.get(company) else {
                return false; // no longer followed
            };
            // From the company's own channels: the cost follows what changed, not
            // everything followed.
            let keys: Vec<String> = f
                .channels
                .keys()
                .map(|ch| self.shared.keys.stream(company, ch))
                .collect();
            // With the company's last ID (its meta key, same slot; two commands, not a
            // pipeline: a pipeline meeting an `ASK` mid-migration is resent whole with
            // `ASKING` before its first command only). See `read_done`.
            let cut = f.cut;
            let mut last = redis::cmd("HGET");
            last.arg(self.shared.keys.meta(company)).arg("last");
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT").arg(count).arg("STREAMS").arg(&keys);
            for _ in &keys {
                read.arg(cut.to_string());
            }
            let (mut c1, mut c2) = (conn.clone(), conn.clone());
            let company = company.clone();
            reading.insert(company.clone());
            reads.push(Box::pin(async move {
                let (last, read) = tokio::join!(
                    last.query_async::<Option<String>>(&mut c1),
                    read.query_async::<Option<StreamReadReply>>(&mut c2)
                );
                let result = last.and_then(|last| Ok((last.as_deref().and_then(StreamId::parse), read?)));
                Read {
                    company,
                    started,
                    cut,
                    result,
                }
            }));
            false
        });
    }

    /// A company's read came back: its events are delivered (a read cut short by COUNT
    /// leaves it dirty); after a failed read it waits for a history check. So does a
    /// company whose last ID went below both the cut the read started from and the
    /// highest last ID seen before: its history went back under this reader (a failover
    /// a cluster client followed silently, to a replica that never had what was
    /// delivered), and new events below the cut would never be read. (Entries another
    /// client wrote straight into a stream can raise the cut above the last ID, but never
    /// lower the last ID below what was seen.) Fails when one Redis's connection is gone
    /// (a cluster connection reconnects by itself, per node).
    fn read_done(&mut self, done: Read, work: &mut Work) -> RedisResult<()> {
        let count = self.shared.settings.read_count;
        let Read {
            company,
            started,
            cut,
            result,
        } = done;
        let went_back = |f: &Followed, last: StreamId| last < cut && last < f.last_seen;
        let result = match (result, self.companies.get_mut(&company)) {
            (Ok((Some(last), _)), Some(f)) if went_back(f, last) => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "history went back",
                format!("last {last}, cut {cut}, seen {}", f.last_seen),
            ))),
            (Ok((last, read)), f) => {
                if let (Some(last), Some(f)) = (last, f) {
                    f.last_seen = f.last_seen.max(last);
                }
                Ok(read)
            }
            (Err(e), _) => Err(e),
        };
        match result {
            Ok(Some(reply)) => {
                if reply.keys.iter().any(|k| k.ids.len() >= count) {
                    work.dirty.insert(company);
                }
                self.dispatch(reply, started, count);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(company, error = %e, "redis read failed; retrying after a history check at the next tick");
                work.dirty.remove(&company);
                if let Some(f) = self.companies.get_mut(&company) {
                    f.freeze();
                }
                work.unchecked.insert(company);
                if (e.is_io_error() || e.is_connection_dropped()) && !self.shared.target.is_cluster() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// What the reader has to do, and has in flight (one read or check per company at a
/// time).
#[derive(Default)]
struct Work {
    /// To read: announced, adopted into, or cut short by COUNT.
    dirty: HashSet<String>,
    /// To check before they are read again: a failed read, or a (re)subscribe on a cluster.
    unchecked: HashSet<String>,
    reads: FuturesUnordered<ReadFuture>,
    reading: HashSet<String>,
    checks: FuturesUnordered<super::history::CheckFuture>,
    checking: HashSet<String>,
}

impl Work {
    /// Whether `company` waits for its history check (then it is not read).
    fn held(&self, company: &str) -> bool {
        self.unchecked.contains(company) || self.checking.contains(company)
    }
}

/// One company's read: its name, the adoption count when it started, and the reply.
type ReadFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Read> + Send>>;

/// One company's read, done: the adoption count and the cut it started from, and the
/// company's last ID with what was read.
struct Read {
    company: String,
    started: u64,
    cut: StreamId,
    result: RedisResult<(Option<StreamId>, Option<StreamReadReply>)>,
}
