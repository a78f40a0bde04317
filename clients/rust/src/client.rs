//! The blocking client.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::options::Options;
use crate::tail::Tail;
use crate::types::{
    decode_records, int, object, AppendOptions, AppendResult, GlobalPage, Page, Position, Record, StreamConfig, StreamInfo,
};

/// A BadBatch client: one per server, shared by every thread.
///
/// `Client` is `Send + Sync` and cheap to clone (an `Arc` inside): clones share one connection
/// pool (keep-alive connections, at most [`Options::max_idle_connections`] idle), so make one
/// per server and share it, or clone it into each thread. Every call blocks the calling thread
/// only.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    /// The overall deadline of every call through this handle ([`Client::with_timeout`]).
    call_timeout: Option<Duration>,
}

pub(crate) struct Inner {
    /// The server's URL without a trailing slash (`http://127.0.0.1:8080`).
    pub(crate) base: String,
    pub(crate) opts: Options,
    agent: ureq::Agent,
    pub(crate) tail_agent: ureq::Agent,
}

/// The pages of a stream, from [`Client::pages`].
#[derive(Debug)]
pub struct Pages {
    client: Client,
    stream: String,
    from: Position,
    limit: Option<u32>,
    done: bool,
}

impl Iterator for Pages {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Result<Page>> {
        if self.done {
            return None;
        }
        match self.client.read(&self.stream, self.from, self.limit) {
            Ok(page) if page.records.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                self.from = Position::Offset(page.next_offset);
                Some(Ok(page))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base).field("call_timeout", &self.call_timeout).finish()
    }
}

/// How an attempt may be retried after a failure that may have reached the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Idem {
    /// A read: retried after any transient failure, `500 internal` included.
    Read,
    /// Idempotent (a cursor write, an append under an idempotency key): retried after any
    /// transient failure but `500`.
    Safe,
    /// An append without a key: retried only when it surely never reached the server
    /// (connection refused, `429`, `503 no_leader`).
    Unsafe,
}

/// A server's answer, read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) replayed: bool,
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{:02X}", b));
        }
    }
    out
}

/// A name that cannot travel as a URL path segment (URL parsing removes dot segments).
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::new(ErrorKind::InvalidStream, format!("{} name {:?}: want [A-Za-z0-9][A-Za-z0-9._-]{{0,199}}", what, name)));
    }
    Ok(())
}

/// 64 random bits from the OS.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        // No OS randomness: jitter only, so the clock's nanoseconds will do.
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        return u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    u64::from_le_bytes(b)
}

/// A fresh idempotency key: 128 random bits, hex.
pub fn new_idempotency_key() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| Error::new(ErrorKind::Internal, format!("no randomness for an idempotency key: {}", e)))?;
    Ok(b.iter().map(|x| format!("{:02x}", x)).collect())
}

/// The delay before retry number `attempt` (0-based): full jitter over `retry_backoff * 2^attempt`,
/// capped at `max_backoff`.
pub(crate) fn backoff(opts: &Options, attempt: u32) -> Duration {
    let cap = opts.max_backoff.as_nanos() as u64;
    let base = (opts.retry_backoff.as_nanos() as u64).saturating_mul(1u64 << attempt.min(40));
    let ceil = base.min(cap).max(1);
    Duration::from_nanos(random_u64() % (ceil + 1))
}

pub(crate) fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    let v = v?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

/// Maps a transport failure: the error, and whether the request surely never reached the server.
pub(crate) fn transport_error(t: &ureq::Transport) -> (Error, bool) {
    use ureq::ErrorKind as K;
    let msg = t.to_string();
    match t.kind() {
        K::ConnectionFailed | K::Dns | K::ProxyConnect => (Error::new(ErrorKind::Connection, msg), true),
        K::Io => {
            let timed_out = std::error::Error::source(t)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|e| matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock))
                .unwrap_or(false)
                || msg.contains("timed out");
            (Error::new(if timed_out { ErrorKind::Timeout } else { ErrorKind::Connection }, msg), false)
        }
        K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly | K::InvalidProxyUrl => {
            (Error::new(ErrorKind::InvalidOptions, msg), true)
        }
        // An answer that is not HTTP: the client cannot decode it.
        K::BadStatus | K::BadHeader => (Error::new(ErrorKind::Internal, msg), false),
        _ => (Error::new(ErrorKind::Connection, msg), false),
    }
}

pub(crate) fn io_error(e: &std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::Timeout,
        _ => ErrorKind::Connection,
    };
    Error::new(kind, format!("reading the answer: {}", e))
}

fn read_body(resp: ureq::Response) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body)?;
    Ok(body)
}

pub(crate) fn build_agent(opts: &Options, read_timeout: Option<Duration>) -> ureq::Agent {
    let mut b = ureq::AgentBuilder::new()
        .timeout_connect(opts.connect_timeout)
        .redirects(0)
        .user_agent(&opts.user_agent)
        .max_idle_connections(opts.max_idle_connections)
        .max_idle_connections_per_host(opts.max_idle_connections)
        .no_delay(true);
    if let Some(d) = read_timeout {
        b = b.timeout_read(d);
    }
    b.build()
}

/// Whether a redirect from `from` to `to` keeps the bearer token: only when the answer named
/// the leader (`Leader-Id`), and never from https down to http.
pub(crate) fn keeps_token(leader_named: bool, from: &str, to: &str) -> bool {
    leader_named && !(from.starts_with("https:") && to.starts_with("http:"))
}

/// True for the failures of writing a request body that a server's early answer causes: the
/// server answered (`413` to a body above its limit, by `Content-Length`) and closed the
/// connection while the client was still sending.
fn broken_while_sending(t: &ureq::Transport) -> bool {
    std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(|e| matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset))
        .unwrap_or(false)
}

/// Bodies at least this large get the early-answer fallback (below it, the server reads the whole
/// body before it answers, and a broken connection is a broken connection).
const EARLY_ANSWER_MIN_BODY: usize = 64 * 1024;

/// One HTTP/1.1 exchange over a plain TCP connection that reads the answer while it writes the
/// body, so that an answer the server sends before the body is complete (then closing the
/// connection) is seen. ureq writes the whole body before it reads and reports only the broken
/// pipe. `None` when no answer came.
fn early_answer(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
    connect_timeout: Duration,
    timeout: Duration,
) -> Option<ureq::Response> {
    use std::io::Write;
    let u = url::Url::parse(url).ok()?;
    if u.scheme() != "http" {
        return None;
    }
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).ok()?.next()?;
    let stream = std::net::TcpStream::connect_timeout(&addr, connect_timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let mut target = u.path().to_string();
    if let Some(q) = u.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut head =
        format!("{} {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\n", method, target, host, port, body.len());
    for (k, v) in headers {
        head.push_str(&format!("{}: {}\r\n", k, v));
    }
    head.push_str("\r\n");
    let mut w = stream.try_clone().ok()?;
    let mut data = head.into_bytes();
    data.extend_from_slice(body);
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    let mut answer = Vec::new();
    let _ = (&stream).read_to_end(&mut answer); // an error after the answer (a reset) is fine
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    if !answer.starts_with(b"HTTP/1.") || !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    String::from_utf8_lossy(&answer).parse().ok()
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`; `https://` with the
    /// default `tls` feature). The options are validated first: a bad value is
    /// [`ErrorKind::InvalidOptions`], reported before any request.
    pub fn new(base_url: &str, options: Options) -> Result<Client> {
        options.validate()?;
        let u = url::Url::parse(base_url).map_err(|e| Error::new(ErrorKind::InvalidOptions, format!("base URL {:?}: {}", base_url, e)))?;
        match u.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => return Err(Error::new(ErrorKind::InvalidOptions, "https:// needs the crate's `tls` feature")),
            s => return Err(Error::new(ErrorKind::InvalidOptions, format!("base URL scheme {:?}: want http or https", s))),
        }
        if u.host_str().is_none() || u.query().is_some() || u.fragment().is_some() {
            return Err(Error::new(ErrorKind::InvalidOptions, format!("base URL {:?}: want scheme://host[:port][/path]", base_url)));
        }
        let base = u.as_str().trim_end_matches('/').to_string();
        let agent = build_agent(&options, None);
        let tail_agent = build_agent(&options, Some(options.tail_idle_timeout));
        Ok(Client { inner: Arc::new(Inner { base, opts: options, agent, tail_agent }), call_timeout: None })
    }

    /// The options in force (the caller's, with the defaults filled in).
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// A handle to the same client (same pool) whose every call has an overall deadline of `d`:
    /// all attempts, redirects and backoffs included. A call that runs out of it fails with
    /// [`ErrorKind::Timeout`]. Tails are not bounded by it: use [`Tail::next_timeout`].
    pub fn with_timeout(&self, d: Duration) -> Client {
        Client { inner: self.inner.clone(), call_timeout: Some(d) }
    }

    /// Appends one record.
    pub fn append(&self, stream: &str, record: &Record, opts: &AppendOptions) -> Result<AppendResult> {
        let mut body = Vec::with_capacity(record.value.len() * 4 / 3 + 64);
        record.encode(&mut body);
        self.post_records(stream, &body, opts)
    }

    /// Appends `records` atomically: all of them get consecutive offsets, or none is stored.
    pub fn append_batch(&self, stream: &str, records: &[Record], opts: &AppendOptions) -> Result<AppendResult> {
        let size: usize = records.iter().map(|r| r.value.len() * 4 / 3 + 64).sum();
        let mut body = Vec::with_capacity(size + 16);
        body.extend_from_slice(b"{\"records\":[");
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            r.encode(&mut body);
        }
        body.extend_from_slice(b"]}");
        self.post_records(stream, &body, opts)
    }

    fn post_records(&self, stream: &str, body: &[u8], opts: &AppendOptions) -> Result<AppendResult> {
        check_name("stream", stream)?;
        if let Some(k) = &opts.idempotency_key {
            if k.is_empty() || k.len() > 256 || !k.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::new(ErrorKind::InvalidOptions, "idempotency_key: want 1 to 256 printable ASCII characters"));
            }
        }
        let key = match (&opts.idempotency_key, self.inner.opts.generate_idempotency_keys) {
            (Some(k), _) => Some(k.clone()),
            (None, true) => Some(new_idempotency_key()?),
            (None, false) => None,
        };
        let mut headers: Vec<(&str, String)> = Vec::with_capacity(2);
        if let Some(k) = &key {
            headers.push(("Idempotency-Key", k.clone()));
        }
        if let Some(o) = opts.expected_last_offset {
            headers.push(("Expected-Last-Offset", o.to_string()));
        }
        if let Some(p) = &opts.producer {
            if p.id.is_empty() || p.id.len() > 256 || !p.id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::new(ErrorKind::InvalidOptions, "producer id: want 1 to 256 printable ASCII characters"));
            }
            const MAX_COUNTER: u64 = (1 << 53) - 1;
            if p.epoch > MAX_COUNTER || p.seq > MAX_COUNTER {
                return Err(Error::new(ErrorKind::InvalidOptions, "producer epoch and seq: want 0 to 2^53-1"));
            }
            headers.push(("Producer-Id", p.id.clone()));
            headers.push(("Producer-Epoch", p.epoch.to_string()));
            headers.push(("Producer-Seq", p.seq.to_string()));
        }
        if opts.close {
            headers.push(("Stream-Closed", "true".to_string()));
        }
        if let Some(s) = &opts.stream_seq {
            if s.is_empty() || s.len() > 256 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::new(ErrorKind::InvalidOptions, "stream_seq: want 1 to 256 printable ASCII characters"));
            }
            headers.push(("Stream-Seq", s.clone()));
        }
        // A producer's seq makes a repeat harmless too: the server answers it with the first result.
        let idem = if key.is_some() || opts.producer.is_some() { Idem::Safe } else { Idem::Unsafe };
        let path = format!("/v1/streams/{}/records", segment(stream));
        let ans = self.call("POST", &path, Some(("application/json", body)), &headers, idem)?;
        let mut res = AppendResult::decode(&ans.body)?;
        res.replayed |= ans.replayed;
        Ok(res)
    }

    /// Creates `stream` with `config`: `true` when it created it, `false` when it existed with
    /// the same configuration (nothing changed); another configuration is
    /// [`ErrorKind::StreamExists`]. Safe to retry.
    pub fn create_stream(&self, stream: &str, config: &StreamConfig) -> Result<bool> {
        check_name("stream", stream)?;
        let mut body = serde_json::Map::new();
        config.put(&mut body)?;
        Ok(self.put_stream(stream, body)?.status == 201)
    }

    /// Creates `stream` as a fork of `source` at `offset`: it reads the source's records below
    /// `offset`, then its own. `config` `None` takes the source's configuration. A fork onto an
    /// existing stream is [`ErrorKind::StreamExists`]; a missing source [`ErrorKind::NotFound`].
    pub fn fork_stream(&self, stream: &str, source: &str, offset: i64, config: Option<&StreamConfig>) -> Result<()> {
        check_name("stream", stream)?;
        check_name("source stream", source)?;
        if offset < 0 {
            return Err(Error::new(ErrorKind::InvalidOptions, format!("fork offset {}: want 0 or more", offset)));
        }
        let mut body = serde_json::Map::new();
        body.insert("fork".into(), serde_json::json!({"stream": source, "offset": offset}));
        if let Some(c) = config {
            c.put(&mut body)?;
        }
        self.put_stream(stream, body)?;
        Ok(())
    }

    fn put_stream(&self, stream: &str, body: serde_json::Map<String, Value>) -> Result<Answer> {
        let body = Value::Object(body).to_string();
        // Safe to retry: an equal configuration again changes nothing.
        self.call("PUT", &format!("/v1/streams/{}", segment(stream)), Some(("application/json", body.as_bytes())), &[], Idem::Safe)
    }

    /// Closes `stream`: appends are refused ([`ErrorKind::StreamClosed`]) and tails end after its
    /// last record. Closing a closed stream again succeeds; safe to retry. To close with a final
    /// append atomically, append with [`AppendOptions::close`].
    pub fn close_stream(&self, stream: &str) -> Result<()> {
        check_name("stream", stream)?;
        self.call("POST", &format!("/v1/streams/{}/close", segment(stream)), None, &[], Idem::Safe)?;
        Ok(())
    }

    /// Deletes `stream` ([`ErrorKind::NotFound`] when there is none). A stream that forks still
    /// read is soft-deleted: it answers [`ErrorKind::Gone`] until its last fork is deleted. Not
    /// retried after an unknown outcome: a repeat of a delete that took effect answers not_found.
    pub fn delete_stream(&self, stream: &str) -> Result<()> {
        check_name("stream", stream)?;
        self.call("DELETE", &format!("/v1/streams/{}", segment(stream)), None, &[], Idem::Unsafe)?;
        Ok(())
    }

    /// Reads one page of `stream` from `from`; `limit`: the page size (`None`: the server's
    /// default, 100).
    pub fn read(&self, stream: &str, from: Position, limit: Option<u32>) -> Result<Page> {
        check_name("stream", stream)?;
        let mut path = format!("/v1/streams/{}/records?{}", segment(stream), from.query());
        if let Some(l) = limit {
            path.push_str(&format!("&limit={}", l));
        }
        let ans = self.call("GET", &path, None, &[], Idem::Read)?;
        let m = object(&ans.body)?;
        Ok(Page { records: decode_records(&m, Some(stream))?, next_offset: int(&m, "next_offset")? })
    }

    /// The pages of `stream` from `from`, `limit` records each, up to the live end: an
    /// [`Iterator`] of pages that ends at the first empty page, or after yielding an error.
    pub fn pages(&self, stream: &str, from: Position, limit: Option<u32>) -> Pages {
        Pages { client: self.clone(), stream: stream.to_string(), from, limit, done: false }
    }

    /// Reads one page of the global log (every stream the token may read, in commit order)
    /// from `from_seq`.
    pub fn read_global(&self, from_seq: i64, limit: Option<u32>) -> Result<GlobalPage> {
        let mut path = format!("/v1/records?from_seq={}", from_seq);
        if let Some(l) = limit {
            path.push_str(&format!("&limit={}", l));
        }
        let ans = self.call("GET", &path, None, &[], Idem::Read)?;
        let m = object(&ans.body)?;
        Ok(GlobalPage { records: decode_records(&m, None)?, next_seq: int(&m, "next_seq")? })
    }

    /// A live tail of `stream` from `from`: an [`Iterator`] of records over SSE that reconnects
    /// with `Last-Event-ID` after any failure (a server restart included) and resumes with no
    /// gap and no duplicate. It ends when the stream is closed (after its last record), or
    /// (after yielding the error) on an error a retry cannot fix: `not_found`, `gone`,
    /// `forbidden`, `unauthorized`, `bad_request`, `invalid_stream`.
    /// Drop it (or call [`Tail::close`]) to stop.
    pub fn tail(&self, stream: &str, from: Position) -> Tail {
        Tail::open(self.inner.clone(), stream, from)
    }

    /// The streams the token may read.
    pub fn streams(&self) -> Result<Vec<StreamInfo>> {
        let ans = self.call("GET", "/v1/streams", None, &[], Idem::Read)?;
        let m = object(&ans.body)?;
        match m.get("streams") {
            Some(Value::Array(a)) => a.iter().map(StreamInfo::decode).collect(),
            Some(Value::Null) | None => Ok(Vec::new()),
            _ => Err(crate::types::bad_answer("streams is not a list")),
        }
    }

    /// One stream's description.
    pub fn stream_info(&self, stream: &str) -> Result<StreamInfo> {
        check_name("stream", stream)?;
        let ans = self.call("GET", &format!("/v1/streams/{}", segment(stream)), None, &[], Idem::Read)?;
        StreamInfo::decode(&serde_json::from_slice(&ans.body).map_err(|_| crate::types::bad_answer("not JSON"))?)
    }

    /// Stores the consumer cursor `name` of `stream` at `offset`.
    pub fn set_cursor(&self, stream: &str, name: &str, offset: i64) -> Result<()> {
        check_name("stream", stream)?;
        check_name("cursor", name)?;
        let path = format!("/v1/streams/{}/cursors/{}", segment(stream), segment(name));
        let body = format!("{{\"offset\":{}}}", offset);
        self.call("PUT", &path, Some(("application/json", body.as_bytes())), &[], Idem::Safe)?;
        Ok(())
    }

    /// The consumer cursor `name` of `stream` (`not_found` when it was never set).
    pub fn cursor(&self, stream: &str, name: &str) -> Result<i64> {
        check_name("stream", stream)?;
        check_name("cursor", name)?;
        let path = format!("/v1/streams/{}/cursors/{}", segment(stream), segment(name));
        let ans = self.call("GET", &path, None, &[], Idem::Read)?;
        int(&object(&ans.body)?, "offset")
    }

    /// One request with its retries and redirects.
    fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>, headers: &[(&str, String)], idem: Idem) -> Result<Answer> {
        let o = &self.inner.opts;
        let deadline = self.call_timeout.map(|d| Instant::now() + d);
        let mut url = format!("{}{}", self.inner.base, path);
        let mut send_token = true;
        let mut redirects = 0;
        let mut attempt: u32 = 0;
        loop {
            let mut timeout = o.request_timeout;
            if let Some(dl) = deadline {
                let left = dl.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, format!("{} {}: the call's deadline passed", method, path)));
                }
                timeout = timeout.min(left);
            }
            let mut req = self.inner.agent.request(method, &url).timeout(timeout);
            if let (true, Some(t)) = (send_token, &o.token) {
                req = req.set("Authorization", &format!("Bearer {}", t));
            }
            for (k, v) in headers {
                req = req.set(k, v);
            }
            let mut res = match body {
                Some((ct, b)) => req.set("Content-Type", ct).send_bytes(b),
                None => req.call(),
            };
            if let (Err(ureq::Error::Transport(t)), Some((ct, b))) = (&res, body) {
                if b.len() >= EARLY_ANSWER_MIN_BODY && broken_while_sending(t) {
                    // The body never reached the server whole, so nothing was stored: resending
                    // it is safe, keyed or not.
                    let mut hs: Vec<(String, String)> =
                        vec![("Content-Type".into(), ct.into()), ("User-Agent".into(), o.user_agent.clone())];
                    if let (true, Some(t)) = (send_token, &o.token) {
                        hs.push(("Authorization".into(), format!("Bearer {}", t)));
                    }
                    hs.extend(headers.iter().map(|(k, v)| (k.to_string(), v.clone())));
                    if let Some(resp) = early_answer(&url, method, &hs, b, o.connect_timeout, timeout) {
                        res = if resp.status() >= 400 { Err(ureq::Error::Status(resp.status(), resp)) } else { Ok(resp) };
                    }
                }
            }
            // Each arm either returns, or gives the failure, whether it may be retried, and the
            // server's Retry-After.
            let (failure, retryable, retry_after) = match res {
                Ok(resp) if (300..400).contains(&resp.status()) => {
                    let status = resp.status();
                    let location = resp.header("Location").map(str::to_string);
                    let leader = resp.header("Leader-Id").map(|s| !s.is_empty()).unwrap_or(false);
                    let rid = resp.header("X-Request-Id").map(str::to_string);
                    let body_bytes = read_body(resp).unwrap_or_default();
                    let err = Error::from_answer(status, &body_bytes, None, rid);
                    let next = match (location, status) {
                        (Some(l), 307 | 308) => url::Url::parse(&url).and_then(|u| u.join(&l)).ok(),
                        _ => None,
                    };
                    let next = match next {
                        Some(n) if redirects < 10 && matches!(n.scheme(), "http" | "https") => n,
                        _ => return Err(err),
                    };
                    redirects += 1;
                    // The token goes on only to a leader that the follower named, never from
                    // https down to http.
                    send_token &= keeps_token(leader, &url, next.as_str());
                    url = next.to_string();
                    continue;
                }
                Ok(resp) => {
                    let replayed = resp.header("Idempotent-Replayed").map(|v| v.eq_ignore_ascii_case("true")).unwrap_or(false);
                    let status = resp.status();
                    match read_body(resp) {
                        Ok(body) => return Ok(Answer { status, body, replayed }),
                        Err(e) => (io_error(&e), idem != Idem::Unsafe, None),
                    }
                }
                Err(ureq::Error::Status(status, resp)) => {
                    let ra = parse_retry_after(resp.header("Retry-After"));
                    let rid = resp.header("X-Request-Id").map(str::to_string);
                    let producer: Vec<(String, String)> = ["Producer-Epoch", "Producer-Expected-Seq", "Producer-Received-Seq"]
                        .iter()
                        .filter_map(|h| resp.header(h).map(|v| (h.to_string(), v.to_string())))
                        .collect();
                    let body_bytes = read_body(resp).unwrap_or_default();
                    let err = Error::from_answer(status, &body_bytes, ra, rid)
                        .with_producer_headers(|name| producer.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()));
                    let retryable = match status {
                        429 => true,
                        // no_leader stores nothing; unavailable (a journal failed mid-write, a store
                        // closed under the append) leaves the outcome unknown.
                        503 => err.kind() == ErrorKind::NoLeader || idem != Idem::Unsafe,
                        502 | 504 => idem != Idem::Unsafe,
                        500 => idem == Idem::Read,
                        _ => false,
                    };
                    (err, retryable, ra)
                }
                Err(ureq::Error::Transport(t)) => {
                    let (err, never_reached) = transport_error(&t);
                    if err.kind() == ErrorKind::InvalidOptions {
                        return Err(err);
                    }
                    let retryable = match err.kind() {
                        ErrorKind::Internal => idem == Idem::Read,
                        _ => never_reached || idem != Idem::Unsafe,
                    };
                    (err, retryable, None)
                }
            };
            if !retryable || attempt >= o.max_retries {
                return Err(failure);
            }
            let delay = match retry_after {
                Some(ra) if ra > o.max_retry_after => return Err(failure),
                Some(ra) if !ra.is_zero() => ra,
                _ => backoff(o, attempt),
            };
            if let Some(dl) = deadline {
                if Instant::now() + delay >= dl {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("the call's deadline passes before the next retry; last failure: {}", failure),
                    ));
                }
            }
            std::thread::sleep(delay);
            attempt += 1;
            // A retry starts over at the node the caller named: after a redirect, the leader
            // it named may be the node that just failed, and the follower knows the next one.
            url = format!("{}{}", self.inner.base, path);
            send_token = true;
            redirects = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Client>();
        fn send<T: Send + 'static>() {}
        send::<crate::Tail>();
        send::<crate::Error>();
        check::<crate::Error>();
    }

    #[test]
    fn new_validates() {
        for bad in ["", "ftp://x", "http://", "http://h:1/?q=1", "not a url"] {
            assert_eq!(Client::new(bad, Options::default()).unwrap_err().kind(), ErrorKind::InvalidOptions, "{}", bad);
        }
        let bad = Options { max_backoff: Duration::from_millis(1), ..Options::default() };
        assert_eq!(Client::new("http://127.0.0.1:1", bad).unwrap_err().kind(), ErrorKind::InvalidOptions);
        let c = Client::new("http://127.0.0.1:8080/", Options::default()).unwrap();
        assert_eq!(c.inner.base, "http://127.0.0.1:8080");
    }

    #[test]
    fn segments_and_names() {
        assert_eq!(segment("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(segment("a b/é"), "a%20b%2F%C3%A9");
        assert!(check_name("stream", "..").is_err());
        assert!(check_name("stream", "ok").is_ok());
    }

    #[test]
    fn backoff_is_full_jitter_capped() {
        let o = Options::default();
        for attempt in 0..50 {
            let d = backoff(&o, attempt);
            let ceil = (o.retry_backoff * 2u32.saturating_pow(attempt.min(20))).min(o.max_backoff);
            assert!(d <= ceil, "attempt {}: {:?} > {:?}", attempt, d, ceil);
        }
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }

    #[test]
    fn redirects_keep_the_token_only_to_a_named_leader_and_never_down_to_http() {
        assert!(keeps_token(true, "http://a:1/x", "http://b:2/x"));
        assert!(keeps_token(true, "https://a/x", "https://b/x"));
        assert!(keeps_token(true, "http://a/x", "https://b/x"));
        assert!(!keeps_token(true, "https://a/x", "http://b/x"));
        assert!(!keeps_token(false, "http://a/x", "http://b/x"));
    }

    #[test]
    fn keys_are_128_bit_hex() {
        let a = new_idempotency_key().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_idempotency_key().unwrap());
    }

    #[test]
    fn connection_refused_is_connection_after_retries() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let o = Options {
            max_retries: 2,
            retry_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..Options::default()
        };
        let c = Client::new(&format!("http://{}", addr), o).unwrap();
        let e = c.stream_info("s").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connection, "{}", e);
        assert_eq!(e.status(), None);
    }
}
