//! Retries, Retry-After, redirects, timeouts and tail resumption against a scripted HTTP server.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use badbatch::{AppendOptions, Client, ErrorKind, Options, Position, Record};

#[derive(Clone)]
enum Reply {
    /// A whole answer; `close`: close the connection after it.
    Raw(String, bool),
    /// Close the connection without answering.
    Drop,
    /// Wait, then answer.
    Slow(Duration, String),
}

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Mock {
    url: String,
    reqs: Arc<Mutex<Vec<Req>>>,
}

impl Mock {
    fn reqs(&self) -> Vec<Req> {
        self.reqs.lock().unwrap().clone()
    }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\n", status, body.len());
    for (k, v) in headers {
        s.push_str(&format!("{}: {}\r\n", k, v));
    }
    s.push_str("\r\n");
    s.push_str(body);
    Reply::Raw(s, false)
}

fn error(status: u16, code: &str, headers: &[(&str, &str)]) -> Reply {
    answer(status, headers, &format!(r#"{{"error":{{"code":"{}","message":"m"}}}}"#, code))
}

const APPENDED: &str =
    r#"{"stream":"s","first_offset":0,"last_offset":0,"count":1,"first_seq":0,"last_seq":0,"durability":"fsynced","replayed":false}"#;

fn mock(replies: Vec<Reply>) -> Mock {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let reqs = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let r2 = reqs.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let (reqs, queue) = (r2.clone(), queue.clone());
            std::thread::spawn(move || serve(conn, reqs, queue));
        }
    });
    Mock { url, reqs }
}

fn serve(conn: TcpStream, reqs: Arc<Mutex<Vec<Req>>>, queue: Arc<Mutex<VecDeque<Reply>>>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        reqs.lock().unwrap().push(Req { method, path, headers, body });
        let reply = queue.lock().unwrap().pop_front().unwrap_or_else(|| error(500, "internal", &[]));
        match reply {
            Reply::Drop => return,
            Reply::Raw(s, close) => {
                if w.write_all(s.as_bytes()).is_err() || close {
                    return;
                }
            }
            Reply::Slow(d, s) => {
                std::thread::sleep(d);
                if w.write_all(s.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

fn fast() -> Options {
    Options {
        retry_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        token: Some("tok-0123456789abcdef".into()),
        ..Options::default()
    }
}

#[test]
fn unavailable_and_no_leader_are_retried_under_one_key() {
    let m = mock(vec![error(503, "no_leader", &[("Retry-After", "0")]), error(503, "unavailable", &[]), answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let res = c.append("s", &Record::bytes(b"x".to_vec()), &AppendOptions::default()).unwrap();
    assert_eq!(res.first_offset, 0);
    let reqs = m.reqs();
    assert_eq!(reqs.len(), 3);
    let key = reqs[0].header("Idempotency-Key").unwrap().to_string();
    assert_eq!(key.len(), 32);
    assert!(reqs.iter().all(|r| r.header("Idempotency-Key") == Some(key.as_str())));
    assert!(reqs.iter().all(|r| r.header("Authorization") == Some("Bearer tok-0123456789abcdef")));
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/streams/s/records");
    assert_eq!(reqs[0].body, br#"{"value_base64":"eA=="}"#);
}

#[test]
fn a_broken_connection_is_retried_only_under_a_key() {
    let m = mock(vec![Reply::Drop, answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let opts = AppendOptions { idempotency_key: Some("mine".into()), expected_last_offset: Some(-1), ..Default::default() };
    c.append("s", &Record::default(), &opts).unwrap();
    let reqs = m.reqs();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.header("Idempotency-Key") == Some("mine") && r.header("Expected-Last-Offset") == Some("-1")));

    let m = mock(vec![Reply::Drop, answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, Options { generate_idempotency_keys: false, ..fast() }).unwrap();
    let e = c.append("s", &Record::default(), &AppendOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{}", e);
    assert_eq!(m.reqs().len(), 1);
    assert_eq!(m.reqs()[0].header("Idempotency-Key"), None);
}

#[test]
fn without_a_key_only_no_leader_is_retried() {
    let m = mock(vec![error(503, "no_leader", &[("Retry-After", "0")]), answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, Options { generate_idempotency_keys: false, ..fast() }).unwrap();
    c.append("s", &Record::default(), &AppendOptions::default()).unwrap();
    assert_eq!(m.reqs().len(), 2, "503 no_leader stores nothing: retried");

    // 503 unavailable leaves an append's outcome unknown: not retried without a key.
    let m = mock(vec![error(503, "unavailable", &[]), answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, Options { generate_idempotency_keys: false, ..fast() }).unwrap();
    let e = c.append("s", &Record::default(), &AppendOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", e);
    assert_eq!(m.reqs().len(), 1);
}

#[test]
fn internal_is_retried_for_reads_only() {
    let page = r#"{"records":[],"next_offset":0}"#;
    let m = mock(vec![error(500, "internal", &[]), answer(200, &[], page)]);
    let c = Client::new(&m.url, fast()).unwrap();
    c.read("s", Position::Earliest, Some(5)).unwrap();
    assert_eq!(m.reqs().len(), 2);
    assert_eq!(m.reqs()[0].path, "/v1/streams/s/records?from=earliest&limit=5");

    let m = mock(vec![error(500, "internal", &[]), answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let e = c.append("s", &Record::default(), &AppendOptions::default()).unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Internal, Some(500)));
    assert_eq!(m.reqs().len(), 1);
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let m = mock(vec![error(429, "rate_limited", &[("Retry-After", "1")]), answer(201, &[], APPENDED)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let t0 = Instant::now();
    c.append("s", &Record::default(), &AppendOptions::default()).unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());

    let m = mock(vec![error(429, "rate_limited", &[("Retry-After", "100")])]);
    let c = Client::new(&m.url, fast()).unwrap();
    let e = c.append("s", &Record::default(), &AppendOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(100)));
    assert_eq!(m.reqs().len(), 1);
}

#[test]
fn max_retries_bounds_the_attempts() {
    let m = mock(vec![error(503, "unavailable", &[]); 10]);
    let c = Client::new(&m.url, Options { max_retries: 2, ..fast() }).unwrap();
    let e = c.stream_info("s").unwrap_err();
    assert_eq!((e.kind(), e.code(), e.status()), (ErrorKind::Unavailable, "unavailable", Some(503)));
    assert_eq!(m.reqs().len(), 3);
    let m = mock(vec![error(503, "unavailable", &[]); 10]);
    let c = Client::new(&m.url, Options { max_retries: 0, ..fast() }).unwrap();
    assert!(c.streams().is_err());
    assert_eq!(m.reqs().len(), 1);
}

#[test]
fn redirects_keep_the_token_only_for_a_named_leader() {
    for (leader_id, want_token) in [(Some("n2"), true), (None, false)] {
        let leader = mock(vec![answer(201, &[], APPENDED)]);
        let loc = format!("{}/v1/streams/s/records", leader.url);
        let mut h = vec![("Location", loc.as_str())];
        if let Some(id) = leader_id {
            h.push(("Leader-Id", id));
        }
        let follower = mock(vec![error(307, "not_leader", &h)]);
        let c = Client::new(&follower.url, fast()).unwrap();
        c.append("s", &Record::bytes(b"x".to_vec()), &AppendOptions::default()).unwrap();
        let (f, l) = (follower.reqs(), leader.reqs());
        assert_eq!((f.len(), l.len()), (1, 1));
        assert_eq!(l[0].method, "POST");
        assert_eq!(l[0].body, f[0].body);
        assert_eq!(l[0].header("Idempotency-Key"), f[0].header("Idempotency-Key"));
        assert_eq!(l[0].header("Authorization").is_some(), want_token, "Leader-Id {:?}", leader_id);
    }
}

#[test]
fn with_timeout_bounds_the_call() {
    let m = mock(vec![Reply::Slow(Duration::from_secs(3), answer_text(200, r#"{"streams":[]}"#))]);
    let c = Client::new(&m.url, fast()).unwrap();
    let t0 = Instant::now();
    let e = c.with_timeout(Duration::from_millis(300)).streams().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{}", e);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

fn answer_text(status: u16, body: &str) -> String {
    match answer(status, &[], body) {
        Reply::Raw(s, _) => s,
        _ => unreachable!(),
    }
}

fn sse(events: &[(i64, &str)]) -> Reply {
    let mut s = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nStream-Next-Offset: 0\r\nConnection: close\r\n\r\nretry: 1000\n\n: keep-alive\n\n");
    for (o, v) in events {
        s.push_str(&format!(
            "id: {}\ndata: {{\"offset\":{},\"seq\":{},\"timestamp\":\"2026-01-02T03:04:05Z\",\"value\":{}}}\n\n",
            o, o, o, v
        ));
    }
    Reply::Raw(s, true)
}

#[test]
fn tail_resumes_with_last_event_id_without_gap_or_duplicate() {
    let m = mock(vec![
        sse(&[(0, "\"a\""), (1, "\"b\"")]),
        error(503, "unavailable", &[]),
        sse(&[(1, "\"b\""), (2, "\"c\"")]),
        error(404, "not_found", &[]),
    ]);
    let c = Client::new(&m.url, fast()).unwrap();
    let mut t = c.tail("s", Position::Earliest);
    let mut got = Vec::new();
    for _ in 0..3 {
        let r = t.next_timeout(Duration::from_secs(10)).unwrap().unwrap();
        got.push((r.offset, r.json().unwrap()));
    }
    assert_eq!(got, vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]);
    let e = t.next().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(t.next().is_none());
    let reqs = m.reqs();
    assert_eq!(reqs[0].path, "/v1/streams/s/records?from=earliest");
    assert_eq!(reqs[0].header("Accept"), Some("text/event-stream"));
    assert_eq!(reqs[0].header("Last-Event-ID"), None);
    assert_eq!(reqs[1].header("Last-Event-ID"), Some("1"));
    assert_eq!(reqs[2].header("Last-Event-ID"), Some("1"));
    assert_eq!(reqs[3].header("Last-Event-ID"), Some("2"));
}

#[test]
fn a_tail_error_event_ends_the_tail() {
    let mut s = match sse(&[(5, "1")]) {
        Reply::Raw(s, _) => s,
        _ => unreachable!(),
    };
    s.push_str("event: error\ndata: {\"error\":{\"code\":\"gone\",\"message\":\"below retention\"}}\n\n");
    let m = mock(vec![Reply::Raw(s, true)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let mut t = c.tail("s", Position::Offset(5));
    assert_eq!(t.next().unwrap().unwrap().offset, 5);
    let e = t.next().unwrap().unwrap_err();
    assert_eq!((e.kind(), e.status(), e.message()), (ErrorKind::Gone, Some(410), "below retention"));
    assert!(t.next().is_none());
    assert_eq!(m.reqs()[0].path, "/v1/streams/s/records?from=5");
}

#[test]
fn a_retry_after_a_redirect_starts_again_at_the_named_node() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let leader = mock(vec![answer(201, &[], APPENDED)]);
    let to_dead = format!("{}/v1/streams/s/records", dead);
    let to_leader = format!("{}/v1/streams/s/records", leader.url);
    let follower = mock(vec![
        error(307, "not_leader", &[("Location", to_dead.as_str()), ("Leader-Id", "1")]),
        error(307, "not_leader", &[("Location", to_leader.as_str()), ("Leader-Id", "3")]),
    ]);
    let c = Client::new(&follower.url, fast()).unwrap();
    c.append("s", &Record::default(), &AppendOptions::default()).unwrap();
    assert_eq!(follower.reqs().len(), 2);
    assert_eq!(leader.reqs().len(), 1);
    assert!(leader.reqs()[0].header("Authorization").is_some());
}

#[test]
fn a_bad_idempotency_key_is_refused_before_any_request() {
    let m = mock(vec![]);
    let c = Client::new(&m.url, fast()).unwrap();
    for k in ["", "line\r\nbreak", &"k".repeat(257)] {
        let e =
            c.append("s", &Record::default(), &AppendOptions { idempotency_key: Some(k.to_string()), ..Default::default() }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidOptions);
    }
    assert!(m.reqs().is_empty());
}

#[test]
fn a_bad_stream_seq_is_refused_before_any_request() {
    let m = mock(vec![]);
    let c = Client::new(&m.url, fast()).unwrap();
    for s in ["", "s-\n7", "s-\u{e9}", &"s".repeat(257)] {
        let e = c.append("s", &Record::default(), &AppendOptions { stream_seq: Some(s.to_string()), ..Default::default() }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidOptions, "{:?}", s);
    }
    assert!(m.reqs().is_empty());
}

#[cfg(feature = "stream")]
#[test]
fn a_tail_is_a_stream_too() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    /// The next item of a stream, on this thread (a minimal executor).
    fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        struct Next<'a, S>(&'a mut S);
        impl<S: futures_core::Stream + Unpin> Future for Next<'_, S> {
            type Output = Option<S::Item>;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                Pin::new(&mut *self.0).poll_next(cx)
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = Next(s);
        loop {
            if let Poll::Ready(v) = Pin::new(&mut f).poll(&mut cx) {
                return v;
            }
            std::thread::park_timeout(Duration::from_secs(10));
        }
    }

    let m = mock(vec![sse(&[(0, "\"a\"")]), Reply::Slow(Duration::from_millis(300), answer_text(200, "")), error(404, "not_found", &[])]);
    let c = Client::new(&m.url, fast()).unwrap();
    let mut s = c.tail("s", Position::Earliest).into_stream();
    assert_eq!(next(&mut s).unwrap().unwrap().offset, 0);
    assert_eq!(next(&mut s).unwrap().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(next(&mut s).is_none());
}

#[test]
fn lifecycle_requests_retries_and_error_kinds() {
    let info = r#"{"stream":"s","first_offset":0,"next_offset":0,"records":0,"bytes":0}"#;
    let carried = [("Producer-Epoch", "4"), ("Producer-Expected-Seq", "8"), ("Producer-Received-Seq", "9")];
    let m = mock(vec![
        error(503, "unavailable", &[]),
        answer(201, &[], info),
        answer(201, &[], info),
        error(503, "unavailable", &[]),
        answer(200, &[], info),
        error(503, "unavailable", &[]),
        error(502, "bad_gateway", &[]),
        answer(201, &[], APPENDED),
        error(409, "stream_closed", &carried),
        error(409, "stream_exists", &carried),
        error(409, "producer_seq_gap", &carried),
        error(403, "producer_fenced", &carried),
        error(409, "stream_seq", &carried),
    ]);
    let c = Client::new(&m.url, Options { generate_idempotency_keys: false, ..fast() }).unwrap();
    let cfg = badbatch::StreamConfig {
        content_type: Some("a/b".into()),
        expires_at: Some(std::time::UNIX_EPOCH + Duration::from_secs(1_893_553_445)),
        closed: true,
        ..Default::default()
    };
    assert!(c.create_stream("s", &cfg).unwrap(), "a create is retried");
    let fork_cfg = badbatch::StreamConfig { ttl: Some(Duration::from_secs(60)), ..Default::default() };
    c.fork_stream("f", "s", 3, Some(&fork_cfg)).unwrap();
    c.close_stream("s").unwrap();
    let e = c.delete_stream("s").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "a delete is not retried after an unknown outcome");
    let opts = AppendOptions {
        producer: Some(badbatch::Producer::new("p", 1, 2)),
        close: true,
        stream_seq: Some("s-7".into()),
        ..Default::default()
    };
    c.append("s", &Record::bytes(b"x".to_vec()), &opts).unwrap();
    let reqs = m.reqs();
    assert_eq!(reqs.len(), 8);
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("PUT", "/v1/streams/s"));
    let body: badbatch::serde_json::Value = badbatch::serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(body, badbatch::serde_json::json!({"content_type": "a/b", "expires_at": "2030-01-02T03:04:05Z", "closed": true}));
    let body: badbatch::serde_json::Value = badbatch::serde_json::from_slice(&reqs[2].body).unwrap();
    assert_eq!(body, badbatch::serde_json::json!({"fork": {"stream": "s", "offset": 3}, "ttl_seconds": 60}));
    assert_eq!((reqs[4].method.as_str(), reqs[4].path.as_str()), ("POST", "/v1/streams/s/close"));
    assert_eq!(reqs[5].method, "DELETE");
    let h = &reqs[7];
    assert_eq!(
        (h.header("Producer-Id"), h.header("Producer-Epoch"), h.header("Producer-Seq"), h.header("Stream-Closed")),
        (Some("p"), Some("1"), Some("2"), Some("true"))
    );
    assert_eq!(h.header("Idempotency-Key"), None, "a producer's append is retried without a key");
    assert_eq!((reqs[6].header("Stream-Seq"), h.header("Stream-Seq")), (Some("s-7"), Some("s-7")), "on every attempt");

    let opts = AppendOptions { producer: Some(badbatch::Producer::new("p", 4, 9)), ..Default::default() };
    for (kind, status) in
        [(ErrorKind::StreamClosed, 409), (ErrorKind::StreamExists, 409), (ErrorKind::ProducerSeqGap, 409), (ErrorKind::ProducerFenced, 403)]
    {
        let e = c.append("s", &Record::default(), &opts).unwrap_err();
        assert_eq!((e.kind(), e.status()), (kind, Some(status)));
        assert_eq!(e.producer_epoch(), Some(4));
        if kind == ErrorKind::ProducerSeqGap {
            assert_eq!((e.expected_seq(), e.received_seq()), (Some(8), Some(9)));
        }
    }
    let e = c.append("s", &Record::default(), &AppendOptions::default()).unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::StreamSeq, Some(409)));
    assert_eq!(m.reqs().len(), 13, "the lifecycle kinds are not retried");
}

#[test]
fn a_tail_ends_at_the_closed_event() {
    let mut s = match sse(&[(0, "0"), (1, "1")]) {
        Reply::Raw(s, _) => s,
        _ => unreachable!(),
    };
    s.push_str("event: closed\ndata: {}\n\n");
    // The connection stays open: only the event ends the tail.
    let m = mock(vec![Reply::Raw(s, false)]);
    let c = Client::new(&m.url, fast()).unwrap();
    let mut t = c.tail("s", Position::Earliest);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match t.next_timeout(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))) {
            None => break,
            Some(Ok(r)) => got.push(r.offset),
            Some(Err(e)) => panic!("{}", e),
        }
    }
    assert_eq!(got, [0, 1]);
    assert_eq!(m.reqs().len(), 1);
}
