//! The stream lifecycle against a real `badbatch serve`: create, idempotent producers, forks,
//! close and the end of a tail, delete (docs/http-api.md, Stream lifecycle).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use badbatch::{AppendOptions, Client, ErrorKind, Options, Position, Producer, Record, StoredRecord, StreamConfig};

fn ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut b = Vec::new();
    let _ = s.read_to_end(&mut b);
    b.starts_with(b"HTTP/1.1 200")
}

/// The server, killed when dropped.
struct Server(Child, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A server of its own for the test `name` (the tests of this file run at the same time).
fn start(name: &str) -> (Server, String) {
    let work = std::env::temp_dir().join(format!("badbatch-rust-lifecycle-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let bin = match std::env::var("BADBATCH_BIN") {
        Ok(b) => PathBuf::from(b),
        Err(_) => {
            let out = work.join("badbatch");
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            assert!(Command::new("go").args(["build", "-o"]).arg(&out).arg("./cmd/badbatch").current_dir(root).status().unwrap().success());
            out
        }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(work.join("server.log")).unwrap();
    let child = Command::new(bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{}", port), "--data-dir"])
        .arg(work.join("data"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let server = Server(child, work);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, format!("http://127.0.0.1:{}", port))
}

fn text(r: &StoredRecord) -> String {
    String::from_utf8_lossy(&r.value).into_owned()
}

fn texts(recs: &[StoredRecord]) -> Vec<String> {
    recs.iter().map(text).collect()
}

fn producer(epoch: u64, seq: u64) -> AppendOptions {
    AppendOptions { producer: Some(Producer::new("p", epoch, seq)), ..Default::default() }
}

/// Every record of a tail, which must end by itself within 10 s.
fn tail_all(c: &Client, stream: &str, from: Position) -> Vec<StoredRecord> {
    let mut t = c.tail(stream, from);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the tail of {} did not end by itself", stream);
        match t.next_timeout(left) {
            None => return out,
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) if e.kind() == ErrorKind::Timeout => panic!("the tail of {} did not end by itself", stream),
            Some(Err(e)) => panic!("tail of {}: {}", stream, e),
        }
    }
}

#[test]
fn lifecycle_against_a_real_server() {
    let (_server, url) = start("lifecycle");
    let c = Client::new(&url, Options::default()).unwrap();
    let b = |s: &str| Record::bytes(s.as_bytes().to_vec());

    // create: created, exists alike, conflict
    let cfg = StreamConfig { content_type: Some("text/plain".into()), ttl: Some(Duration::from_secs(3600)), ..Default::default() };
    assert!(c.create_stream("lc-create", &cfg).unwrap());
    assert!(!c.create_stream("lc-create", &cfg).unwrap(), "the same configuration: nothing changed");
    let e = c.create_stream("lc-create", &StreamConfig::default()).unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::StreamExists, Some(409)));
    let info = c.stream_info("lc-create").unwrap();
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    assert_eq!(info.ttl_seconds, Some(3600));
    assert!(!info.closed);
    assert_eq!(info.forked_from, None);
    assert!(c.create_stream("lc-create-plain", &StreamConfig::default()).unwrap());
    assert_eq!(c.stream_info("lc-create-plain").unwrap().content_type.as_deref(), Some("application/octet-stream"));
    let sub_second = StreamConfig { ttl: Some(Duration::from_millis(1500)), ..Default::default() };
    assert_eq!(c.create_stream("lc-create-x", &sub_second).unwrap_err().kind(), ErrorKind::InvalidOptions);

    // producer: a repeat is replayed, a gap and an older epoch are refused with what the server carried
    let first = c.append("lc-producer", &b("a"), &producer(0, 0)).unwrap();
    let again = c.append("lc-producer", &b("a"), &producer(0, 0)).unwrap();
    assert!(again.replayed);
    assert_eq!(again.first_offset, first.first_offset);
    let gap = c.append("lc-producer", &b("x"), &producer(0, 5)).unwrap_err();
    assert_eq!((gap.kind(), gap.status()), (ErrorKind::ProducerSeqGap, Some(409)));
    assert_eq!((gap.expected_seq(), gap.received_seq(), gap.producer_epoch()), (Some(1), Some(5), Some(0)));
    c.append("lc-producer", &b("b"), &producer(2, 0)).unwrap();
    let fenced = c.append("lc-producer", &b("x"), &producer(1, 0)).unwrap_err();
    assert_eq!((fenced.kind(), fenced.status(), fenced.producer_epoch()), (ErrorKind::ProducerFenced, Some(403), Some(2)));
    assert_eq!(texts(&c.read("lc-producer", Position::Earliest, None).unwrap().records), ["a", "b"]);
    let empty_id = AppendOptions { producer: Some(Producer::new("", 0, 0)), ..Default::default() };
    assert_eq!(c.append("lc-producer", &b("x"), &empty_id).unwrap_err().kind(), ErrorKind::InvalidOptions);

    // fork: reads the source below the fork offset, then its own
    c.append_batch("lc-src", &[b("s0"), b("s1"), b("s2")], &AppendOptions::default()).unwrap();
    c.fork_stream("lc-fork", "lc-src", 2, None).unwrap();
    c.append("lc-fork", &b("f2"), &AppendOptions::default()).unwrap();
    c.append("lc-src", &b("s3"), &AppendOptions::default()).unwrap();
    let page = c.read("lc-fork", Position::Earliest, None).unwrap();
    assert_eq!(texts(&page.records), ["s0", "s1", "f2"]);
    assert_eq!(page.records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
    let info = c.stream_info("lc-fork").unwrap();
    assert_eq!((info.forked_from.as_deref(), info.fork_offset), (Some("lc-src"), Some(2)));
    assert_eq!(c.fork_stream("lc-fork", "lc-src", 1, None).unwrap_err().kind(), ErrorKind::StreamExists);
    assert_eq!(c.fork_stream("lc-fork-2", "lc-no-such-stream", 0, None).unwrap_err().kind(), ErrorKind::NotFound);

    // close: a final append closes, later appends are refused, tails end
    c.append("lc-close", &b("one"), &AppendOptions::default()).unwrap();
    c.append("lc-close", &b("last"), &AppendOptions { close: true, ..Default::default() }).unwrap();
    let e = c.append("lc-close", &b("more"), &AppendOptions::default()).unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::StreamClosed, Some(409)));
    c.close_stream("lc-close").unwrap(); // again: no error
    assert!(c.stream_info("lc-close").unwrap().closed);
    assert_eq!(texts(&tail_all(&c, "lc-close", Position::Earliest)), ["one", "last"]);
    assert!(tail_all(&c, "lc-close", Position::Latest).is_empty());
    c.append("lc-close-live", &b("x"), &AppendOptions::default()).unwrap();
    let closer = {
        let c = c.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c.close_stream("lc-close-live").unwrap();
        })
    };
    assert_eq!(texts(&tail_all(&c, "lc-close-live", Position::Earliest)), ["x"], "a live tail ends at the close");
    closer.join().unwrap();

    // delete: soft while a fork reads it (gone), then cascades (not_found)
    c.append("lc-del", &b("a"), &AppendOptions::default()).unwrap();
    c.fork_stream("lc-del-fork", "lc-del", 1, None).unwrap();
    c.delete_stream("lc-del").unwrap();
    let e = c.stream_info("lc-del").unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Gone, Some(410)));
    assert_eq!(texts(&c.read("lc-del-fork", Position::Earliest, None).unwrap().records), ["a"]);
    c.delete_stream("lc-del-fork").unwrap();
    assert_eq!(c.stream_info("lc-del").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(c.delete_stream("lc-del").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(c.create_stream("lc-del", &StreamConfig::default()).unwrap());
    assert_eq!(c.stream_info("lc-del").unwrap().next_offset, 0);
}

#[test]
fn stream_seq_against_a_real_server() {
    let (_server, url) = start("stream-seq");
    let c = Client::new(&url, Options::default()).unwrap();
    let b = |s: &str| Record::bytes(s.as_bytes().to_vec());
    let seq = |s: &str| AppendOptions { stream_seq: Some(s.to_string()), ..Default::default() };

    c.append("lc-stream-seq", &b("1"), &seq("a")).unwrap();
    c.append_batch("lc-stream-seq", &[b("2"), b("3")], &seq("b")).unwrap();
    let e = c.append("lc-stream-seq", &b("x"), &seq("a")).unwrap_err();
    assert_eq!((e.kind(), e.status(), e.code()), (ErrorKind::StreamSeq, Some(409), "stream_seq"));
    let e = c.append("lc-stream-seq", &b("x"), &seq("b")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StreamSeq, "equal is not above");
    assert_eq!(texts(&c.read("lc-stream-seq", Position::Earliest, None).unwrap().records), ["1", "2", "3"], "nothing stored");
    c.append("lc-stream-seq", &b("4"), &AppendOptions::default()).unwrap(); // no label: no condition
    assert_eq!(c.append("lc-stream-seq", &b("x"), &seq("")).unwrap_err().kind(), ErrorKind::InvalidOptions);

    // 256 printable bytes, at both ends of the range, are a label.
    let (first, second) = ("!".repeat(256), format!("~{}~", " ".repeat(254)));
    c.append("lc-stream-seq-256", &b("1"), &seq(&first)).unwrap();
    c.append("lc-stream-seq-256", &b("2"), &seq(&second)).unwrap();
    assert_eq!(c.append("lc-stream-seq-256", &b("x"), &seq(&second)).unwrap_err().kind(), ErrorKind::StreamSeq, "equal is not above");
    assert_eq!(texts(&c.read("lc-stream-seq-256", Position::Earliest, None).unwrap().records), ["1", "2"]);
}
