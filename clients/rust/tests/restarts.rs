//! A producer appends while the server is restarted (SIGTERM) three times, and a tail follows:
//! the stream holds every value once, in order (retries under idempotency keys never duplicate),
//! and the tail delivers each offset once (no gap, no duplicate across reconnections).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use badbatch::serde_json::json;
use badbatch::{AppendOptions, Client, Options, Position, Record};

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

fn start(bin: &Path, dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.with_extension("log")).unwrap();
    let c = Command::new(bin)
        .args(["serve", "--addr", &format!("127.0.0.1:{}", port), "--data-dir"])
        .arg(dir)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        assert!(Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    c
}

fn stop(mut c: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let _ = c.wait();
}

#[test]
fn appends_and_a_tail_across_restarts() {
    let work = std::env::temp_dir().join(format!("badbatch-rust-restarts-{}", std::process::id()));
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
    let dir = work.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Some(start(&bin, &dir, port));
    let opts = Options { max_retries: 50, max_backoff: Duration::from_millis(200), ..Options::default() };
    let client = Client::new(&format!("http://127.0.0.1:{}", port), opts).unwrap();
    client.append("s", &Record::json(&json!(0)), &AppendOptions::default()).unwrap();
    let mut tail = client.tail("s", Position::Earliest);

    const N: i64 = 1500;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (c, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 1..N {
                let r = c.append("s", &Record::json(&json!(i)), &AppendOptions::default()).unwrap();
                assert_eq!(r.first_offset, i, "value {} at offset {}", i, r.first_offset);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        stop(server.take().unwrap());
        server = Some(start(&bin, &dir, port));
    }
    let mut next = 0;
    while next < N {
        let r = tail.next_timeout(Duration::from_secs(60)).expect("the tail ended").expect("a record");
        assert_eq!(r.offset, next, "no gap, no duplicate");
        assert_eq!(r.json().unwrap(), json!(next));
        next += 1;
    }
    producer.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    let info = client.stream_info("s").unwrap();
    assert_eq!(info.next_offset, N, "no duplicate append");
    drop(tail);
    stop(server.take().unwrap());
    let _ = std::fs::remove_dir_all(&work);
}
