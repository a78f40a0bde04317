//! Against a real 3-node cluster: appends and cursor writes sent to followers follow the `307`
//! to the leader with the bearer token, and after the leader is killed (`kill -9`) appends
//! through a survivor are retried (`no_leader`, a dead leader) until the new leader takes them,
//! with no duplicate. Set `BADBATCH_SKIP_CLUSTER=1` to skip.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use badbatch::serde_json::{self, Value};
use badbatch::{AppendOptions, Client, Options, Position, Record};

const TOKEN: &str = "conformance-admin-token-0001";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n", path, TOKEN).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.get(9..12)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

struct Node {
    http: u16,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cluster_redirects_and_failover() {
    if std::env::var("BADBATCH_SKIP_CLUSTER").map(|v| v == "1").unwrap_or(false) {
        eprintln!("skipped (BADBATCH_SKIP_CLUSTER=1)");
        return;
    }
    let work = std::env::temp_dir().join(format!("badbatch-rust-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let bin = match std::env::var("BADBATCH_BIN") {
        Ok(b) => PathBuf::from(b),
        Err(_) => {
            let out = work.join("badbatch");
            let st = Command::new("go").args(["build", "-o"]).arg(&out).arg("./cmd/badbatch").current_dir(repo_root()).status().unwrap();
            assert!(st.success());
            out
        }
    };
    std::fs::write(work.join("secret"), "rust-client-cluster-test-secret-0001\n").unwrap();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let peers: Vec<String> = ports.iter().enumerate().map(|(i, (_, c))| format!("{}=127.0.0.1:{}", i + 1, c)).collect();
    let mut nodes: Vec<Option<Node>> = ports
        .iter()
        .enumerate()
        .map(|(i, (h, c))| {
            let log = std::fs::File::create(work.join(format!("n{}.log", i + 1))).unwrap();
            let child = Command::new(&bin)
                .arg("serve")
                .args(["--node-id", &(i + 1).to_string()])
                .args(["--addr", &format!("127.0.0.1:{}", h)])
                .args(["--cluster-addr", &format!("127.0.0.1:{}", c)])
                .args(["--peers", &peers.join(",")])
                .arg("--cluster-secret-file")
                .arg(work.join("secret"))
                .arg("--tokens-file")
                .arg(repo_root().join("clients/conformance/tokens.txt"))
                .arg("--data-dir")
                .arg(work.join(format!("n{}", i + 1)))
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            Some(Node { http: *h, child })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in nodes.iter().flatten() {
        while get(n.http, "/readyz").map(|(s, _)| s) != Some(200) {
            assert!(Instant::now() < deadline, "cluster not ready (logs in {})", work.display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let leader_id = |port: u16| -> Option<u64> {
        let (s, body) = get(port, "/v1/cluster")?;
        if s != 200 {
            return None;
        }
        serde_json::from_str::<Value>(&body).ok()?["leader_id"].as_u64().filter(|&id| id > 0)
    };
    let opts = Options { token: Some(TOKEN.into()), max_retries: 30, max_backoff: Duration::from_secs(1), ..Options::default() };
    let clients: Vec<Client> =
        nodes.iter().flatten().map(|n| Client::new(&format!("http://127.0.0.1:{}", n.http), opts.clone()).unwrap()).collect();

    // Every node takes appends: two of them are followers that answer 307 with Leader-Id.
    let mut want = 0i64;
    for (i, c) in clients.iter().enumerate() {
        let r = c.append("orders", &Record::json(&serde_json::json!(i)), &AppendOptions::default()).unwrap();
        assert_eq!(r.first_offset, want);
        want += 1;
        c.set_cursor("orders", &format!("c{}", i), r.first_offset).unwrap();
        assert_eq!(c.cursor("orders", &format!("c{}", i)).unwrap(), r.first_offset);
    }

    // Kill the leader; a survivor's appends wait out the election.
    let leader = leader_id(ports[0].0).expect("a leader") as usize;
    drop(nodes[leader - 1].take());
    let survivor = &clients[leader % 3];
    let t0 = Instant::now();
    for i in 0..3 {
        let r = survivor.append("orders", &Record::json(&serde_json::json!(100 + i)), &AppendOptions::default()).unwrap();
        assert_eq!(r.first_offset, want, "offsets stay dense: no duplicate");
        want += 1;
    }
    eprintln!("appends through the failover took {:?}", t0.elapsed());
    let page = survivor.read("orders", Position::Earliest, Some(100)).unwrap();
    let values: Vec<Value> = page.records.iter().map(|r| r.json().unwrap()).collect();
    assert_eq!(values, serde_json::json!([0, 1, 2, 100, 101, 102]).as_array().unwrap().clone());
    drop(nodes);
    let _ = std::fs::remove_dir_all(&work);
}
