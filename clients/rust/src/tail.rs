//! Live tails over SSE: [`Tail`], a blocking [`Iterator`] of records.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{backoff, parse_retry_after, segment, transport_error, Inner};
use crate::error::{Error, ErrorKind, Result};
use crate::types::{Position, StoredRecord};

/// How many records the reader thread may hold ahead of the caller.
const AHEAD: usize = 4096;

/// A live tail of one stream, from [`crate::Client::tail`].
///
/// It is an [`Iterator`] of `Result<StoredRecord>`: each record once, in offset order. A
/// background thread reads the server's SSE answer; after any failure (the connection broke,
/// the server restarted, the connection was silent for `tail_idle_timeout`) it reconnects with
/// `Last-Event-ID`, with backoff, for as long as it takes, and resumes with no gap and no
/// duplicate. When the stream is closed (the server's `event: closed` after its last record) the
/// iterator ends (`None`). It yields an `Err` and then ends on an error that a retry cannot fix
/// (`not_found`, `gone`, `forbidden`, `unauthorized`, `bad_request`, `invalid_stream`, or an
/// answer it cannot decode). Dropping the tail (or [`Tail::close`]) stops it; its thread exits
/// at its next read (at most the server's 15 s heartbeat later).
///
/// `Tail` is `Send`: it can be moved to the thread that consumes it.
pub struct Tail {
    rx: Receiver<Result<StoredRecord>>,
    stop: Arc<AtomicBool>,
    ended: bool,
    /// The async consumer's waker ([`Tail::into_stream`]), woken after every item.
    /// Only the `stream` feature reads it; the reader thread holds its own handle.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    waker: Arc<WakerSlot>,
}

/// Where an async consumer leaves its waker for the reader thread.
#[derive(Default)]
struct WakerSlot {
    set: AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl WakerSlot {
    fn wake(&self) {
        if self.set.load(Ordering::Acquire) {
            if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                w.wake_by_ref();
            }
        }
    }
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("ended", &self.ended).finish()
    }
}

impl Tail {
    pub(crate) fn open(inner: Arc<Inner>, stream: &str, from: Position) -> Tail {
        let (tx, rx) = sync_channel(AHEAD);
        let stop = Arc::new(AtomicBool::new(false));
        // open returns once the first connection has been answered (or has failed), so that
        // `latest` means the live end when tail() was called, not when the thread got going.
        let (ready_tx, ready_rx) = sync_channel(1);
        let wait = inner.opts.request_timeout;
        let waker = Arc::new(WakerSlot::default());
        let w = Worker {
            inner,
            stream: stream.to_string(),
            from,
            tx,
            stop: stop.clone(),
            ready: std::cell::Cell::new(Some(ready_tx)),
            waker: waker.clone(),
        };
        let spawned = std::thread::Builder::new().name(format!("badbatch-tail-{}", stream)).spawn(move || w.run());
        let mut t = Tail { rx, stop, ended: false, waker };
        if spawned.is_ok() {
            let _ = ready_rx.recv_timeout(wait);
        }
        if let Err(e) = spawned {
            // The worker (and its sender) are gone: hand the error over a fresh channel.
            let (tx, rx) = sync_channel(1);
            let _ = tx.send(Err(Error::new(ErrorKind::Internal, format!("cannot start the tail's thread: {}", e))));
            t.rx = rx;
        }
        t
    }

    /// The next record, waiting at most `timeout`. `None`: the tail has ended. On timeout it
    /// answers `Some(Err(e))` with `e.kind() == ErrorKind::Timeout`, and the tail goes on.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<StoredRecord>> {
        if self.ended {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(item) => Some(self.note(item)),
            Err(RecvTimeoutError::Timeout) => Some(Err(Error::new(ErrorKind::Timeout, format!("no record within {:?}", timeout)))),
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                None
            }
        }
    }

    /// Stops the tail.
    pub fn close(self) {}

    fn note(&mut self, item: Result<StoredRecord>) -> Result<StoredRecord> {
        if item.is_err() {
            self.ended = true;
        }
        item
    }
}

/// The tail as a [`futures_core::Stream`] (feature `stream`), from [`Tail::into_stream`].
#[cfg(feature = "stream")]
#[derive(Debug)]
pub struct TailStream {
    tail: Tail,
}

#[cfg(feature = "stream")]
impl Tail {
    /// This tail as a [`futures_core::Stream`] of `Result<StoredRecord>`, for any executor: the
    /// reader thread wakes the task. Items, reconnections and the end are those of the
    /// [`Iterator`]. Opening the tail ([`crate::Client::tail`]) blocks until its first
    /// connection is answered; from async code, open it under `spawn_blocking` if that matters.
    pub fn into_stream(self) -> TailStream {
        TailStream { tail: self }
    }
}

#[cfg(feature = "stream")]
impl futures_core::Stream for TailStream {
    type Item = Result<StoredRecord>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::sync::mpsc::TryRecvError;
        use std::task::Poll;
        let t = &mut self.get_mut().tail;
        if t.ended {
            return Poll::Ready(None);
        }
        for registered in [false, true] {
            match t.rx.try_recv() {
                Ok(item) => return Poll::Ready(Some(t.note(item))),
                Err(TryRecvError::Disconnected) => {
                    t.ended = true;
                    return Poll::Ready(None);
                }
                Err(TryRecvError::Empty) if !registered => {
                    // Leave the waker, then look again: an item sent in between is not missed.
                    *t.waker.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
                    t.waker.set.store(true, Ordering::Release);
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        Poll::Pending
    }
}

impl Iterator for Tail {
    type Item = Result<StoredRecord>;

    fn next(&mut self) -> Option<Result<StoredRecord>> {
        if self.ended {
            return None;
        }
        match self.rx.recv() {
            Ok(item) => Some(self.note(item)),
            Err(_) => {
                self.ended = true;
                None
            }
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Worker {
    inner: Arc<Inner>,
    stream: String,
    from: Position,
    tx: SyncSender<Result<StoredRecord>>,
    stop: Arc<AtomicBool>,
    /// Told once, when the first connection has its answer.
    ready: std::cell::Cell<Option<SyncSender<()>>>,
    waker: Arc<WakerSlot>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The channel closes with the worker: an async consumer must see it.
        let tx = std::mem::replace(&mut self.tx, sync_channel(0).0);
        drop(tx);
        self.waker.wake();
    }
}

/// How one connection ended.
enum End {
    /// The caller went away: stop.
    Stop,
    /// An error no retry can fix: yield it and stop.
    Fatal(Error),
    /// Reconnect (after the given Retry-After, or backoff).
    Again(Option<Duration>),
    /// The stream is closed and every record was delivered: the tail ends.
    Closed,
}

impl Worker {
    fn run(self) {
        // next: the offset the next record must have (known after the first answer).
        // last: the last delivered offset (for Last-Event-ID).
        let mut next: Option<i64> = match self.from {
            Position::Offset(o) => Some(o),
            _ => None,
        };
        let mut last: Option<i64> = None;
        let mut attempt: u32 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let mut connected = false;
            let end = self.connect(&mut next, &mut last, &mut connected);
            let wait = match end {
                End::Stop | End::Closed => return, // dropping the sender ends the consumer's iteration
                End::Fatal(e) => {
                    let _ = self.tx.send(Err(e));
                    self.waker.wake();
                    return;
                }
                End::Again(ra) => {
                    if connected {
                        attempt = 0; // a connection that was answered starts the backoff over
                    }
                    let d = match ra {
                        Some(d) if !d.is_zero() => d.min(self.inner.opts.max_retry_after),
                        _ => backoff(&self.inner.opts, attempt),
                    };
                    attempt = attempt.saturating_add(1).min(30);
                    d
                }
            };
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
            }
        }
    }

    fn connect(&self, next: &mut Option<i64>, last: &mut Option<i64>, connected: &mut bool) -> End {
        let query = match next {
            Some(n) => format!("from={}", n),
            None => self.from.query(),
        };
        let url = format!("{}/v1/streams/{}/records?{}", self.inner.base, segment(&self.stream), query);
        let mut req = self.inner.tail_agent.get(&url).set("Accept", "text/event-stream");
        if let Some(t) = &self.inner.opts.token {
            req = req.set("Authorization", &format!("Bearer {}", t));
        }
        if let Some(l) = last {
            req = req.set("Last-Event-ID", &l.to_string());
        }
        let res = req.call();
        if let Some(r) = self.ready.take() {
            let _ = r.send(());
        }
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(status, resp)) => {
                let ra = parse_retry_after(resp.header("Retry-After"));
                let rid = resp.header("X-Request-Id").map(str::to_string);
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(&mut resp.into_reader(), &mut body);
                let e = Error::from_answer(status, &body, ra, rid);
                return if e.kind().is_permanent_for_tail() { End::Fatal(e) } else { End::Again(ra) };
            }
            Err(ureq::Error::Transport(t)) => {
                let (e, _) = transport_error(&t);
                return if e.kind() == ErrorKind::InvalidOptions { End::Fatal(e) } else { End::Again(None) };
            }
        };
        if resp.status() != 200 {
            return End::Again(None);
        }
        *connected = true;
        if next.is_none() {
            *next = resp.header("Stream-Next-Offset").and_then(|v| v.trim().parse().ok());
        }
        let mut r = BufReader::with_capacity(64 * 1024, resp.into_reader());
        let mut line = Vec::with_capacity(512);
        let mut data: Vec<u8> = Vec::with_capacity(512);
        let mut event = String::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return End::Stop;
            }
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return End::Again(None),
                Ok(_) => {}
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line.is_empty() {
                // Dispatch.
                if data.is_empty() {
                    event.clear();
                    continue;
                }
                if event == "closed" {
                    return End::Closed; // the server ends the response after it
                }
                if event == "error" {
                    let e = Error::from_event(&data);
                    return if e.kind().is_permanent_for_tail() { End::Fatal(e) } else { End::Again(e.retry_after()) };
                }
                let rec = serde_json::from_slice(&data)
                    .map_err(|_| crate::types::bad_answer("an SSE event is not JSON"))
                    .and_then(|v| StoredRecord::decode(&v, Some(&self.stream)));
                data.clear();
                event.clear();
                let rec = match rec {
                    Ok(rec) => rec,
                    Err(e) => return End::Fatal(e),
                };
                if let Some(n) = *next {
                    if rec.offset < n {
                        continue; // already delivered
                    }
                }
                *next = Some(rec.offset + 1);
                *last = Some(rec.offset);
                if self.tx.send(Ok(rec)).is_err() {
                    return End::Stop;
                }
                self.waker.wake();
                continue;
            }
            if line[0] == b':' {
                continue; // a comment: the heartbeat
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (&line[..], &b""[..]),
            };
            match field {
                b"data" => {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(value);
                }
                b"event" => event = String::from_utf8_lossy(value).into_owned(),
                _ => {} // id (the record carries its offset), retry
            }
        }
    }
}
