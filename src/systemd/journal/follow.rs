//! Live following, one journalctl per distinct filter, shared by every viewer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::BufReader;
use tokio::process::Child;
use tokio::sync::{broadcast, oneshot, watch};

use super::args::{Mode, build_args, spawn_journalctl};
use super::entry::{CursorPos, LineReader, drain_stderr};
use super::read::{Start, journal_tail_cursor, read};
use super::{
    BROADCAST_CAPACITY, CATCH_UP_CHUNK, CATCH_UP_TRIES, LogEntry, LogFilter, MAX_FOLLOWERS,
    MAX_QUICK_FAILURES, StreamItem, check_filter, validate_cursor,
};

/// A live entry with its parsed position, shared by all viewers of a follower.
#[derive(Debug)]
struct Live {
    entry: LogEntry,
    pos: CursorPos,
}

/// One `journalctl --follow` per distinct filter (ignoring the time range), shared by all viewers
/// and stopped when the last viewer's stream is dropped. Cheap to clone; one per app.
/// [`JournalHub::subscribe`] must be called inside a Tokio runtime.
#[derive(Clone, Default)]
pub struct JournalHub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    followers: Mutex<HashMap<LogFilter, Slot>>,
    /// journalctl --follow children alive (spawned and not yet reaped).
    children: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

struct Slot {
    id: u64,
    viewers: usize,
    tx: broadcast::Sender<Arc<Live>>,
    ready: watch::Receiver<bool>,
    /// Dropping it (with the slot) tells the follower task to kill its child and exit.
    _stop: oneshot::Sender<()>,
}

impl HubInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<LogFilter, Slot>> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Held by each stream: the last one dropped stops the follower.
struct ViewerGuard {
    hub: Arc<HubInner>,
    key: LogFilter,
    id: u64,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        let mut followers = self.hub.lock();
        if let Some(slot) = followers.get_mut(&self.key)
            && slot.id == self.id
        {
            slot.viewers -= 1;
            if slot.viewers == 0 {
                followers.remove(&self.key);
            }
        }
    }
}

/// The follower a filter's live entries come from: they do not depend on the time range
/// (each viewer drops what is after its `until`), so one serves all of them.
fn follower_key(filter: &LogFilter) -> LogFilter {
    LogFilter {
        since: None,
        until: None,
        ..filter.clone()
    }
}

impl JournalHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `journalctl --follow` processes alive right now (a stopped follower's
    /// child counts until it has been killed and reaped).
    pub fn follower_count(&self) -> usize {
        self.inner.children.load(Ordering::SeqCst)
    }

    /// A live stream of `filter`'s entries.
    ///
    /// With `resume_after`: every entry strictly after that cursor, then live ones (a
    /// cursor journalctl rejects falls back to the backlog). Otherwise the last `backlog`
    /// entries as of the first poll, then live ones; with `backlog == 0`, every entry
    /// written after this call. Nothing is lost or repeated at the seam, nor when the
    /// viewer lags ([`StreamItem::Skipped`]) or the follower process dies. The stream ends
    /// only if journalctl keeps failing. Dropping the stream leaves; the last viewer to
    /// leave stops the follower.
    pub async fn subscribe(
        &self,
        filter: LogFilter,
        backlog: usize,
        resume_after: Option<String>,
    ) -> impl Stream<Item = StreamItem> + Send + 'static {
        // Live only: from the journal's end as of now. The follower starts later (a
        // journalctl to spawn), and an entry written in between would be neither backlog
        // nor live. Without that end (an empty journal, journalctl failing), from the
        // follower's start.
        let resume_after = match resume_after {
            None if backlog == 0 => journal_tail_cursor().await.ok().flatten(),
            resume => resume,
        };
        let mut state = Viewer {
            filter,
            rx: None,
            ready: None,
            guard: None,
            pending: VecDeque::new(),
            last_cursor: None,
            origin: None,
            boundary: None,
            resume_unchecked: false,
            catch_up_failures: 0,
            phase: Phase::Done,
        };
        match check_filter(&state.filter) {
            Err(e) => tracing::warn!(error = %e, "log stream not started"),
            Ok(()) => {
                let resume = resume_after.filter(|c| validate_cursor(c));
                let (rx, ready, guard) = self.join(&state.filter);
                state.rx = Some(rx);
                state.ready = Some(ready);
                state.guard = Some(guard);
                state.resume_unchecked = resume.is_some();
                state.phase = match resume {
                    Some(cursor) => {
                        state.boundary = Some(CursorPos::parse(&cursor));
                        state.last_cursor = Some(cursor);
                        Phase::CatchUp { backlog }
                    }
                    None => Phase::Backlog(backlog),
                };
            }
        }
        futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
    }

    /// Register a viewer: subscribe to the follower of `filter`, starting it if needed.
    /// Whether a stream of `filter` can start: it shares a running follower, or there
    /// is room for one more ([`MAX_FOLLOWERS`]).
    pub fn has_room_for(&self, filter: &LogFilter) -> bool {
        let followers = self.inner.lock();
        followers.contains_key(&follower_key(filter)) || followers.len() < MAX_FOLLOWERS
    }

    fn join(
        &self,
        filter: &LogFilter,
    ) -> (
        broadcast::Receiver<Arc<Live>>,
        watch::Receiver<bool>,
        ViewerGuard,
    ) {
        let key = follower_key(filter);
        let mut followers = self.inner.lock();
        let slot = followers.entry(key.clone()).or_insert_with(|| {
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
            let (ready_tx, ready) = watch::channel(false);
            let (stop, stop_rx) = oneshot::channel();
            let follower = Follower {
                key: key.clone(),
                id,
                tx: tx.clone(),
                ready: ready_tx,
                stop: stop_rx,
                hub: Arc::downgrade(&self.inner),
                children: self.inner.children.clone(),
            };
            tokio::spawn(follower.run());
            Slot {
                id,
                viewers: 0,
                tx,
                ready,
                _stop: stop,
            }
        });
        slot.viewers += 1;
        let rx = slot.tx.subscribe();
        let ready = slot.ready.clone();
        let guard = ViewerGuard {
            hub: self.inner.clone(),
            key,
            id: slot.id,
        };
        (rx, ready, guard)
    }
}

/// Counts a live follower child; decrements when dropped (after reaping, or if the task
/// is torn down, when kill_on_drop kills it).
struct ChildCount(Arc<AtomicUsize>);

impl ChildCount {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        ChildCount(counter)
    }
}

impl Drop for ChildCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Follower {
    key: LogFilter,
    id: u64,
    tx: broadcast::Sender<Arc<Live>>,
    ready: watch::Sender<bool>,
    stop: oneshot::Receiver<()>,
    hub: Weak<HubInner>,
    children: Arc<AtomicUsize>,
}

enum RunEnd {
    Stopped,
    Exited { produced: bool },
}

impl Follower {
    /// Seam design: the follower starts at the journal's tail cursor as of *before* it
    /// reports ready, and every viewer subscribes to the broadcast before it waits for
    /// ready and reads its backlog/catch-up. So for each viewer, the catch-up read covers
    /// everything up to a point at or after the follower's start, and the broadcast
    /// covers everything the follower sends after the viewer subscribed; whatever the
    /// follower sent before that is already in the journal, hence in the catch-up read.
    /// The overlap is removed by position (see [`CursorPos::is_after`]). After a crash the
    /// child restarts from the last cursor it sent, so the follower itself has no gaps.
    async fn run(mut self) {
        let start = tokio::select! {
            _ = &mut self.stop => return,
            tail = journal_tail_cursor() => tail,
        };
        let mut from = match start {
            Ok(cursor) => cursor,
            Err(e) => {
                tracing::warn!(units = ?self.key.units, error = %e, "journal follower cannot start");
                self.give_up();
                return;
            }
        };
        self.ready.send_replace(true);
        let mut quick_failures = 0u32;
        loop {
            let started = Instant::now();
            let end = match spawn_journalctl(&build_args(&self.key, Mode::Follow(from.as_deref())))
            {
                Ok(child) => self.pump(child, &mut from).await,
                Err(e) => {
                    tracing::warn!(units = ?self.key.units, error = %e, "journal follower spawn failed");
                    RunEnd::Exited { produced: false }
                }
            };
            let produced = match end {
                RunEnd::Stopped => return,
                RunEnd::Exited { produced } => produced,
            };
            if produced || started.elapsed() > Duration::from_secs(5) {
                quick_failures = 0;
            } else {
                quick_failures += 1;
            }
            if quick_failures >= MAX_QUICK_FAILURES {
                tracing::warn!(units = ?self.key.units, "journal follower keeps failing; giving up");
                self.give_up();
                return;
            }
            let backoff = Duration::from_millis(100 << quick_failures.min(5));
            tokio::select! {
                _ = &mut self.stop => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// Broadcast the child's entries until it exits or we are told to stop; then kill and
    /// reap it. `from` tracks the last cursor sent (the restart point).
    async fn pump(&mut self, mut child: Child, from: &mut Option<String>) -> RunEnd {
        let count = ChildCount::new(self.children.clone());
        let stderr = tokio::spawn(drain_stderr(child.stderr.take()));
        let mut reader = child.stdout.take().map(|out| {
            LineReader::new(BufReader::with_capacity(64 * 1024, out)).excluding(&self.key.excludes)
        });
        // `--cursor=C` repeats C's own entry if it matches the filter: skip it.
        let mut skip = from.clone();
        let mut produced = false;
        let stopped = loop {
            let Some(reader) = reader.as_mut() else {
                break false;
            };
            tokio::select! {
                biased;
                _ = &mut self.stop => break true,
                next = reader.next_entry() => match next {
                    Ok(Some(entry)) => {
                        if skip.take().is_some_and(|c| c == entry.cursor) {
                            continue;
                        }
                        produced = true;
                        *from = Some(entry.cursor.clone());
                        let pos = CursorPos::parse(&entry.cursor);
                        // No receivers is fine: viewers may all be between joins.
                        let _ = self.tx.send(Arc::new(Live { entry, pos }));
                    }
                    Ok(None) => break false,
                    Err(e) => {
                        tracing::warn!(units = ?self.key.units, error = %e, "reading journal follower");
                        break false;
                    }
                },
            }
        };
        let _ = child.start_kill();
        let status = child.wait().await;
        drop(count);
        if stopped {
            stderr.abort();
            return RunEnd::Stopped;
        }
        let stderr = stderr.await.unwrap_or_default();
        tracing::warn!(
            units = ?self.key.units, status = ?status, stderr = %stderr,
            "journal follower exited; restarting from its last cursor"
        );
        RunEnd::Exited { produced }
    }

    /// Remove our slot so that the broadcast closes and the viewers' streams end.
    fn give_up(&self) {
        self.ready.send_replace(true);
        if let Some(hub) = self.hub.upgrade() {
            let mut followers = hub.lock();
            if followers.get(&self.key).is_some_and(|s| s.id == self.id) {
                followers.remove(&self.key);
            }
        }
    }
}

enum Phase {
    /// Read the last `n` entries, then go live.
    Backlog(usize),
    /// Read everything after `last_cursor` (in chunks), then go live. `backlog` is the
    /// fallback if an unchecked client cursor is rejected.
    CatchUp {
        backlog: usize,
    },
    Live,
    Done,
}

/// The state of one viewer's stream.
struct Viewer {
    filter: LogFilter,
    rx: Option<broadcast::Receiver<Arc<Live>>>,
    ready: Option<watch::Receiver<bool>>,
    guard: Option<ViewerGuard>,
    pending: VecDeque<StreamItem>,
    /// Cursor of the last entry delivered (or the resume cursor).
    last_cursor: Option<String>,
    /// Without backlog: the newest entry when the stream started (not sent).
    origin: Option<String>,
    /// Live entries at or before this position were (or will be) delivered by a read.
    boundary: Option<CursorPos>,
    /// `last_cursor` came from the client and journalctl has not accepted it yet.
    resume_unchecked: bool,
    /// Catch-up reads that failed in a row.
    catch_up_failures: u32,
    phase: Phase,
}

impl Viewer {
    async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.phase {
                Phase::Done => {
                    self.rx = None;
                    self.guard = None;
                    return None;
                }
                Phase::Backlog(n) => {
                    self.wait_ready().await;
                    // With no backlog, still read the newest entry (without sending it):
                    // the position to catch up from should this viewer lag before it has
                    // received anything. Everything broadcast since subscribe() is sent.
                    match read(&self.filter, n.max(1), Start::Newest).await {
                        Ok(mut entries) if n == 0 => {
                            self.origin = entries.pop().map(|e| e.cursor);
                        }
                        Ok(entries) => self.push_read(entries),
                        Err(e) => tracing::warn!(error = %e, "log backlog read failed"),
                    }
                    self.phase = Phase::Live;
                }
                Phase::CatchUp { backlog } => {
                    self.wait_ready().await;
                    let Some(after) = self.last_cursor.clone() else {
                        self.phase = Phase::Live;
                        continue;
                    };
                    match read(&self.filter, CATCH_UP_CHUNK, Start::After(&after)).await {
                        Ok(entries) => {
                            self.resume_unchecked = false;
                            self.catch_up_failures = 0;
                            let more = entries.len() == CATCH_UP_CHUNK;
                            if entries.is_empty() {
                                // Everything up to the cursor was delivered already.
                                self.boundary = Some(CursorPos::parse(&after));
                            }
                            self.push_read(entries);
                            if !more {
                                self.phase = Phase::Live;
                            }
                        }
                        Err(e) if self.resume_unchecked => {
                            tracing::info!(error = %e, "cannot resume after that cursor; sending the backlog");
                            self.resume_unchecked = false;
                            self.last_cursor = None;
                            self.boundary = None;
                            self.phase = Phase::Backlog(backlog);
                        }
                        // Going live now would skip what the read missed, silently: try
                        // again, then end the stream, whose client resumes from the last
                        // entry it got (Last-Event-ID) once journalctl works again.
                        Err(e) if self.catch_up_failures < CATCH_UP_TRIES => {
                            self.catch_up_failures += 1;
                            tracing::warn!(error = %e, "log catch-up read failed; trying again");
                            tokio::time::sleep(Duration::from_millis(
                                250 * u64::from(self.catch_up_failures),
                            ))
                            .await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "log catch-up reads keep failing; ending the stream");
                            self.phase = Phase::Done;
                        }
                    }
                }
                Phase::Live => {
                    let Some(rx) = self.rx.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    match rx.recv().await {
                        Ok(live) => {
                            let too_late = self
                                .filter
                                .until
                                .is_some_and(|u| live.pos.realtime.is_some_and(|t| t > u));
                            if too_late
                                || self.boundary.is_some_and(|b| !live.pos.is_after(&b))
                                || self.last_cursor.as_deref() == Some(live.entry.cursor.as_str())
                            {
                                continue;
                            }
                            self.last_cursor = Some(live.entry.cursor.clone());
                            return Some(StreamItem::Entry(live.entry.clone()));
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            self.pending.push_back(StreamItem::Skipped(n));
                            if self.last_cursor.is_none() {
                                self.last_cursor = self.origin.take();
                            }
                            if self.last_cursor.is_some() {
                                self.phase = Phase::CatchUp { backlog: 0 };
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => self.phase = Phase::Done,
                    }
                }
            }
        }
    }

    async fn wait_ready(&mut self) {
        if let Some(ready) = self.ready.as_mut() {
            let _ = ready.wait_for(|r| *r).await;
        }
        self.ready = None;
    }

    /// Queue entries from a read and move the live boundary to the last of them.
    fn push_read(&mut self, entries: Vec<LogEntry>) {
        if let Some(last) = entries.last() {
            self.boundary = Some(CursorPos::parse(&last.cursor));
            self.last_cursor = Some(last.cursor.clone());
        }
        self.pending
            .extend(entries.into_iter().map(StreamItem::Entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_filters_end_the_stream_without_a_follower() {
        use futures_util::StreamExt;
        let hub = JournalHub::new();
        let bad = LogFilter {
            priority: Some(9),
            ..crate::systemd::journal::tests::filter()
        };
        let items: Vec<_> = hub.subscribe(bad, 10, None).await.collect().await;
        assert!(items.is_empty());
        assert_eq!(hub.follower_count(), 0);
        assert!(hub.inner.lock().is_empty());
    }
}
