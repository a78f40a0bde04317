//! The client conformance suite (`clients/conformance/README.md`): starts real `badbatch serve`
//! processes per `servers.json` profile and runs every case in `clients/conformance/cases`
//! through the crate's public API.
//!
//! This client's own extra cases, in the same format, are in `clients/rust/tests/cases`.
//!
//! `BADBATCH_BIN` names a server binary (otherwise it is built with `go build`);
//! `CONFORMANCE_CASE=name` runs only the cases whose name contains it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use badbatch::serde_json::{self, json, Map, Value};
use badbatch::{parse_rfc3339, AppendOptions, Client, Error, ErrorKind, Options, Position, Record, StoredRecord, Tail};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn conformance_dir() -> PathBuf {
    repo_root().join("clients/conformance")
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {}", p.display(), e));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {}", p.display(), e))
}

fn server_binary(work: &Path) -> PathBuf {
    if let Ok(b) = std::env::var("BADBATCH_BIN") {
        return PathBuf::from(b);
    }
    let out = work.join("badbatch");
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg("./cmd/badbatch")
        .current_dir(repo_root())
        .status()
        .expect("go build (set BADBATCH_BIN to skip)");
    assert!(st.success(), "go build failed");
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    fn start(bin: &Path, work: &Path, profile: &str, spec: &Value) -> Server {
        let dir = work.join(format!("data-{}", profile));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> =
            spec["args"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default();
        if spec["tokens"].as_bool().unwrap_or(false) {
            args.push("--tokens-file".into());
            args.push(conformance_dir().join("tokens.txt").to_string_lossy().into_owned());
        }
        let mut s = Server { bin: bin.to_path_buf(), dir, port: free_port(), args, child: None };
        s.spawn();
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.with_extension("log")).unwrap();
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start badbatch serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = ureq_ready(self.port) {
                if r {
                    return;
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("badbatch serve exited: {} (log {})", st, self.dir.with_extension("log").display());
            }
            assert!(Instant::now() < deadline, "server on port {} not ready in 30 s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// GET /readyz over a plain TCP connection (the client under test is not the judge of this).
fn ureq_ready(port: u16) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf.starts_with(b"HTTP/1.1 200"))
}

fn run_id() -> String {
    let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let k = badbatch::new_idempotency_key().unwrap();
    format!("{:08x}", (n ^ u64::from_str_radix(&k[..16], 16).unwrap()) as u32)
}

/// Everything one run of the suite shares.
struct Suite {
    bin: PathBuf,
    work: PathBuf,
    profiles: Map<String, Value>,
    tokens: Map<String, Value>,
    servers: HashMap<String, Server>,
    clients: HashMap<(String, String, bool), Client>,
}

impl Suite {
    fn server(&mut self, profile: &str) -> Result<&mut Server, String> {
        if !self.servers.contains_key(profile) {
            let spec = self.profiles.get(profile).ok_or_else(|| format!("unknown profile {:?}", profile))?.clone();
            let s = Server::start(&self.bin, &self.work, profile, &spec);
            self.servers.insert(profile.to_string(), s);
        }
        Ok(self.servers.get_mut(profile).unwrap())
    }

    /// The client for a profile and token name (`""`: the profile's default).
    fn client(&mut self, profile: &str, token: &str, retries: bool) -> Result<Client, String> {
        let key = (profile.to_string(), token.to_string(), retries);
        if let Some(c) = self.clients.get(&key) {
            return Ok(c.clone());
        }
        let with_tokens = self.profiles.get(profile).and_then(|p| p["tokens"].as_bool()).unwrap_or(false);
        let name = if token.is_empty() && with_tokens { "admin" } else { token };
        let tok = if name.is_empty() {
            None
        } else {
            Some(self.tokens.get(name).and_then(Value::as_str).ok_or_else(|| format!("unknown token {:?}", name))?.to_string())
        };
        let url = self.server(profile)?.url();
        let mut opts = Options { token: tok, ..Options::default() };
        if !retries {
            opts.max_retries = 0;
        }
        let c = Client::new(&url, opts).map_err(|e| e.to_string())?;
        self.clients.insert(key, c.clone());
        Ok(c)
    }
}

/// One case's state.
struct Run {
    suffix: String,
    saved: HashMap<String, Value>,
    tails: HashMap<String, Tail>,
}

impl Run {
    fn stream(&self, step: &Value, name: &str) -> String {
        if step["raw_stream"].as_bool().unwrap_or(false) {
            name.to_string()
        } else {
            format!("{}-{}", name, self.suffix)
        }
    }

    fn lookup(&self, r: &str) -> Result<Value, String> {
        let mut parts = r.split('.');
        let id = parts.next().unwrap();
        let mut v = self.saved.get(id).ok_or_else(|| format!("reference {:?}: no step saved under {:?}", r, id))?;
        for p in parts {
            v = match v {
                Value::Object(m) => m.get(p),
                Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("reference {:?}: no field {:?}", r, p))?;
        }
        Ok(v.clone())
    }

    /// Replaces every `{"ref": "ID.field", "plus"?: N}` in v.
    fn resolve(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::Object(m) if m.get("ref").map(Value::is_string).unwrap_or(false) => {
                let got = self.lookup(m["ref"].as_str().unwrap())?;
                match m.get("plus").and_then(Value::as_i64) {
                    Some(p) => json!(got.as_i64().ok_or_else(|| format!("reference {:?} is not an integer", m["ref"]))? + p),
                    None => got,
                }
            }
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| Ok((k.clone(), self.resolve(v)?))).collect::<Result<_, String>>()?),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.resolve(v)).collect::<Result<_, String>>()?),
            v => v.clone(),
        })
    }
}

fn str_field<'a>(step: &'a Value, name: &str) -> Result<&'a str, String> {
    step[name].as_str().ok_or_else(|| format!("step needs a string {:?}", name))
}

fn int_field(step: &Value, name: &str) -> Result<i64, String> {
    step[name].as_i64().ok_or_else(|| format!("step needs an integer {:?}", name))
}

fn fill(spec: &Value) -> Result<Vec<u8>, String> {
    let text = spec["text"].as_str().ok_or("value_fill needs text")?.as_bytes();
    let len = spec["length"].as_u64().ok_or("value_fill needs length")? as usize;
    if text.is_empty() {
        return Ok(vec![0; len]);
    }
    Ok(text.iter().cycle().take(len).copied().collect())
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    // The test decodes base64 itself, not through the client.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).ok_or_else(|| format!("bad base64 {:?}", s))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

fn to_record(r: &Value) -> Result<Record, String> {
    let mut rec = if let Some(v) = r.get("value") {
        Record::json(v)
    } else if let Some(b) = r.get("value_base64") {
        Record::bytes(b64(b.as_str().ok_or("value_base64 is not a string")?)?)
    } else if let Some(f) = r.get("value_fill") {
        Record::bytes(fill(f)?)
    } else {
        Record::default()
    };
    if let Some(k) = r.get("key").and_then(Value::as_str) {
        rec.key = Some(k.to_string());
    }
    if let Some(Value::Object(h)) = r.get("headers") {
        for (k, v) in h {
            rec.headers.insert(k.clone(), v.as_str().ok_or("header values are strings")?.to_string());
        }
    }
    if let Some(t) = r.get("timestamp") {
        rec.timestamp = Some(parse_rfc3339(t.as_str().ok_or("timestamp is not a string")?).ok_or_else(|| format!("bad timestamp {}", t))?);
    }
    Ok(rec)
}

fn position(v: &Value) -> Result<Position, String> {
    match v {
        Value::Null => Ok(Position::Earliest),
        Value::String(s) if s == "earliest" => Ok(Position::Earliest),
        Value::String(s) if s == "latest" => Ok(Position::Latest),
        Value::Number(n) => Ok(Position::Offset(n.as_i64().ok_or("offset is not an integer")?)),
        Value::Object(m) if m.contains_key("time") => {
            let t = m["time"].as_str().ok_or("time is not a string")?;
            Ok(Position::Time(parse_rfc3339(t).ok_or_else(|| format!("bad time {:?}", t))?))
        }
        v => Err(format!("bad position {}", v)),
    }
}

fn info_json(i: &badbatch::StreamInfo) -> Value {
    json!({
        "stream": i.stream, "first_offset": i.first_offset, "next_offset": i.next_offset, "records": i.records,
        "bytes": i.bytes, "last_timestamp": i.last_timestamp.map(badbatch::format_rfc3339),
    })
}

fn b64_encode(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len() * 4 / 3 + 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A value for a message: long strings cut.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    } else {
        s
    }
}

fn record_json(r: &StoredRecord) -> Value {
    let mut m = Map::new();
    m.insert("stream".into(), json!(r.stream));
    m.insert("offset".into(), json!(r.offset));
    m.insert("seq".into(), json!(r.seq));
    m.insert("timestamp".into(), json!(badbatch::format_rfc3339(r.timestamp)));
    m.insert("key".into(), r.key.as_ref().map(|k| json!(k)).unwrap_or(Value::Null));
    m.insert("headers".into(), json!(r.headers));
    if r.is_json {
        m.insert("value".into(), r.json().unwrap_or(Value::Null));
    } else {
        m.insert("value_base64".into(), json!(b64_encode(&r.value)));
    }
    Value::Object(m)
}

/// JSON equality with numbers compared as numbers (1 == 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).map(|w| json_eq(v, w)).unwrap_or(false))
        }
        _ => a == b,
    }
}

fn check_record(run: &Run, step: &Value, i: usize, want: &Value, got: &StoredRecord) -> Result<(), String> {
    let ctx = |what: &str, w: &dyn std::fmt::Debug, g: &dyn std::fmt::Debug| format!("record {}: {}: want {:?}, got {:?}", i, what, w, g);
    let want = want.as_object().ok_or("an expected record is an object")?;
    for (k, w) in want {
        match k.as_str() {
            "offset" => {
                if w.as_i64() != Some(got.offset) {
                    return Err(ctx("offset", w, &got.offset));
                }
            }
            "seq" => {
                if w.as_i64() != Some(got.seq) {
                    return Err(ctx("seq", w, &got.seq));
                }
            }
            "stream" => {
                let s = run.stream(step, w.as_str().ok_or("stream is a string")?);
                if s != got.stream {
                    return Err(ctx("stream", &s, &got.stream));
                }
            }
            "key" => {
                if w.as_str() != got.key.as_deref() {
                    return Err(ctx("key", w, &got.key));
                }
            }
            "headers" => {
                let h: BTreeMap<String, String> = w
                    .as_object()
                    .ok_or("headers is an object")?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                if h != got.headers {
                    return Err(ctx("headers", &h, &got.headers));
                }
            }
            "timestamp" => {
                let t = parse_rfc3339(w.as_str().ok_or("timestamp is a string")?).ok_or("bad expected timestamp")?;
                if t != got.timestamp {
                    return Err(ctx("timestamp", w, &badbatch::format_rfc3339(got.timestamp)));
                }
            }
            "value" => {
                let g = got.json();
                if !got.is_json || !g.as_ref().map(|g| json_eq(w, g)).unwrap_or(false) {
                    return Err(ctx("JSON value", &short(w), &short(&record_json(got))));
                }
            }
            "value_base64" => {
                let b = b64(w.as_str().ok_or("value_base64 is a string")?)?;
                if got.is_json || b != got.value {
                    return Err(ctx("binary value", &short(w), &short(&record_json(got))));
                }
            }
            "value_fill" => {
                let b = fill(w)?;
                if got.is_json || b != got.value {
                    return Err(format!(
                        "record {}: value_fill: want {} bytes of the fill, got {} bytes (is_json {})",
                        i,
                        b.len(),
                        got.value.len(),
                        got.is_json
                    ));
                }
            }
            other => return Err(format!("record {}: unknown expected field {:?}", i, other)),
        }
    }
    Ok(())
}

fn check_records(run: &Run, step: &Value, want: &Value, got: &[StoredRecord]) -> Result<(), String> {
    let want = want.as_array().ok_or("records is a list")?;
    if want.len() != got.len() {
        return Err(format!(
            "want {} records, got {}: {}",
            want.len(),
            got.len(),
            short(&Value::Array(got.iter().map(record_json).collect()))
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        check_record(run, step, i, w, g)?;
    }
    Ok(())
}

/// What a step's call gave: its result as JSON (saved under the id and compared with
/// `expect.result`), and its records when it has any.
struct Outcome {
    result: Value,
    /// What `id` saves when it is not `result` (the records of read_all and tail_next, the
    /// list of streams).
    saved: Option<Value>,
    records: Option<Vec<StoredRecord>>,
    streams: Option<Vec<String>>,
}

impl Outcome {
    fn of(result: Value) -> Outcome {
        Outcome { result, saved: None, records: None, streams: None }
    }
}

fn api<T>(r: Result<T, Error>) -> Result<T, StepErr> {
    r.map_err(StepErr::Api)
}

enum StepErr {
    /// The client's error: compared with `expect.error`.
    Api(Error),
    /// The runner could not run the step.
    Setup(String),
}

impl From<String> for StepErr {
    fn from(s: String) -> StepErr {
        StepErr::Setup(s)
    }
}

impl From<&str> for StepErr {
    fn from(s: &str) -> StepErr {
        StepErr::Setup(s.to_string())
    }
}

fn take_tail(tail: &mut Tail, count: usize, timeout: Duration) -> Result<Vec<StoredRecord>, StepErr> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match tail.next_timeout(left) {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) if e.kind() == ErrorKind::Timeout => {
                return Err(StepErr::Setup(format!(
                    "tail_next: {} of {} records within {:?}: {}",
                    out.len(),
                    count,
                    timeout,
                    short(&Value::Array(out.iter().map(record_json).collect()))
                )))
            }
            Some(Err(e)) => return Err(StepErr::Api(e)),
            None => return Err(StepErr::Setup(format!("tail_next: the tail ended after {} of {} records", out.len(), count))),
        }
    }
    Ok(out)
}

fn exec(suite: &mut Suite, run: &mut Run, profile: &str, step: &Value) -> Result<Outcome, StepErr> {
    let op = str_field(step, "op")?;
    let token = step["token"].as_str().unwrap_or("");
    // A step that expects rate_limited needs the error itself, so its client does not retry.
    let retries = step["expect"]["error"].as_str() != Some("rate_limited");
    let c = suite.client(profile, token, retries)?;
    let stream = || -> Result<String, StepErr> { Ok(run.stream(step, str_field(step, "stream")?)) };
    let limit = step["limit"].as_u64().map(|l| l as u32);
    Ok(match op {
        "append" => {
            let recs = step["records"].as_array().ok_or("append needs records")?.iter().map(to_record).collect::<Result<Vec<_>, _>>()?;
            let opts = AppendOptions {
                expected_last_offset: step["expected_last_offset"].as_i64(),
                idempotency_key: step["idempotency_key"].as_str().map(str::to_string),
                stream_seq: step["stream_seq"].as_str().map(str::to_string),
                ..Default::default()
            };
            let s = stream()?;
            let res = if recs.len() == 1 { api(c.append(&s, &recs[0], &opts))? } else { api(c.append_batch(&s, &recs, &opts))? };
            Outcome::of(json!({
                "stream": res.stream, "first_offset": res.first_offset, "last_offset": res.last_offset, "count": res.count,
                "first_seq": res.first_seq, "last_seq": res.last_seq, "durability": res.durability, "replayed": res.replayed,
            }))
        }
        "read" => {
            let page = api(c.read(&stream()?, position(&step["from"])?, limit))?;
            let recs: Vec<Value> = page.records.iter().map(record_json).collect();
            Outcome {
                result: json!({"next_offset": page.next_offset, "records": recs}),
                saved: None,
                records: Some(page.records),
                streams: None,
            }
        }
        "read_all" => {
            let mut all = Vec::new();
            for page in c.pages(&stream()?, position(&step["from"])?, limit) {
                all.extend(api(page)?.records);
            }
            let recs: Vec<Value> = all.iter().map(record_json).collect();
            let saved = Some(Value::Array(recs.clone()));
            Outcome { result: json!({"records": recs, "count": all.len()}), saved, records: Some(all), streams: None }
        }
        "read_global" => {
            let from = step["from_seq"].as_i64().ok_or("read_global needs from_seq")?;
            let page = api(c.read_global(from, limit))?;
            let recs: Vec<Value> = page.records.iter().map(record_json).collect();
            Outcome { result: json!({"next_seq": page.next_seq, "records": recs}), saved: None, records: Some(page.records), streams: None }
        }
        "streams" => {
            let list = api(c.streams())?;
            let names: Vec<String> = list.iter().map(|i| i.stream.clone()).collect();
            let infos: Vec<Value> = list.iter().map(info_json).collect();
            Outcome { result: json!({"streams": infos.clone()}), saved: Some(Value::Array(infos)), records: None, streams: Some(names) }
        }
        "stream_info" => Outcome::of(info_json(&api(c.stream_info(&stream()?))?)),
        "set_cursor" => {
            api(c.set_cursor(&stream()?, str_field(step, "name")?, int_field(step, "offset")?))?;
            Outcome::of(json!({}))
        }
        "cursor" => Outcome::of(json!({"offset": api(c.cursor(&stream()?, str_field(step, "name")?))?})),
        "tail_open" => {
            let name = str_field(step, "tail")?.to_string();
            let mut t = c.tail(&stream()?, position(&step["from"])?);
            if step["expect"].get("error").is_some() {
                // The tail's first item is where an error that ends it shows.
                take_tail(&mut t, 1, Duration::from_millis(step["timeout_ms"].as_u64().unwrap_or(10_000)))?;
            }
            run.tails.insert(name, t);
            Outcome::of(json!({}))
        }
        "tail_next" => {
            let name = str_field(step, "tail")?;
            let count = step["count"].as_u64().ok_or("tail_next needs count")? as usize;
            let timeout = Duration::from_millis(step["timeout_ms"].as_u64().unwrap_or(10_000));
            let t = run.tails.get_mut(name).ok_or_else(|| format!("no tail {:?}", name))?;
            let recs = take_tail(t, count, timeout)?;
            let js: Vec<Value> = recs.iter().map(record_json).collect();
            let saved = Some(Value::Array(js.clone()));
            Outcome { result: json!({"records": js, "count": recs.len()}), saved, records: Some(recs), streams: None }
        }
        "tail_close" => {
            let name = str_field(step, "tail")?;
            run.tails.remove(name).ok_or_else(|| format!("no tail {:?}", name))?.close();
            Outcome::of(json!({}))
        }
        "restart" => {
            suite.server(profile)?.restart();
            Outcome::of(json!({}))
        }
        other => return Err(StepErr::Setup(format!("unknown op {:?}", other))),
    })
}

fn check(run: &Run, step: &Value, expect: &Value, got: Result<Outcome, StepErr>) -> Result<Option<Value>, String> {
    let out = match (got, expect.get("error")) {
        (Err(StepErr::Setup(s)), _) => return Err(s),
        (Err(StepErr::Api(e)), Some(want)) => {
            let want = want.as_str().ok_or("expect.error is a string")?;
            if e.kind().to_string() != want {
                return Err(format!("want error {}, got {} ({})", want, e.kind(), e));
            }
            if e.code() != want && ErrorKind::from_code(e.code()).is_some() {
                return Err(format!("error code {:?} differs from its kind {}", e.code(), want));
            }
            if let Some(s) = expect.get("status") {
                if s.as_u64() != e.status().map(u64::from) {
                    return Err(format!("want status {}, got {:?} ({})", s, e.status(), e));
                }
            }
            if let Some(o) = expect.get("current_last_offset") {
                if o.as_i64() != e.current_last_offset() {
                    return Err(format!("want current_last_offset {}, got {:?}", o, e.current_last_offset()));
                }
            }
            return Ok(None);
        }
        (Err(StepErr::Api(e)), None) => return Err(format!("unexpected error: {} (code {:?})", e, e.code())),
        (Ok(o), Some(want)) => return Err(format!("want error {}, got success: {}", want, short(&o.result))),
        (Ok(o), None) => o,
    };
    if let Some(Value::Object(want)) = expect.get("result") {
        for (k, w) in want {
            let g = out.result.get(k).ok_or_else(|| format!("result has no field {:?}: {}", k, out.result))?;
            let w = if k == "stream" && w.is_string() { json!(run.stream(step, w.as_str().unwrap())) } else { w.clone() };
            let same = match (k.as_str(), &w, g) {
                ("last_timestamp" | "timestamp", Value::String(a), Value::String(b)) => {
                    parse_rfc3339(a).is_some() && parse_rfc3339(a) == parse_rfc3339(b)
                }
                _ => json_eq(&w, g),
            };
            if !same {
                return Err(format!("result {:?}: want {}, got {} (result {})", k, w, g, short(&out.result)));
            }
        }
    }
    if let Some(want) = expect.get("records") {
        let recs = out.records.as_ref().ok_or("expect.records on a step without records")?;
        check_records(run, step, want, recs)?;
    }
    if let Some(want) = expect.get("streams_include") {
        let names = out.streams.as_ref().ok_or("expect.streams_include on a step other than streams")?;
        for w in want.as_array().ok_or("streams_include is a list")? {
            let n = run.stream(step, w.as_str().ok_or("stream names are strings")?);
            if !names.contains(&n) {
                return Err(format!("streams: want {:?} among {:?}", n, names));
            }
        }
    }
    for k in expect.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !["error", "status", "current_last_offset", "result", "records", "streams_include"].contains(&k.as_str()) {
            return Err(format!("unknown expectation {:?}", k));
        }
    }
    Ok(Some(out.saved.unwrap_or(out.result)))
}

fn run_case(suite: &mut Suite, case: &Value) -> Result<(), String> {
    let profile = case["profile"].as_str().unwrap_or("default").to_string();
    let mut run = Run { suffix: run_id(), saved: HashMap::new(), tails: HashMap::new() };
    let steps = case["steps"].as_array().ok_or("a case has steps")?;
    for (i, raw) in steps.iter().enumerate() {
        let op = raw["op"].as_str().unwrap_or("?");
        let step = run.resolve(raw).map_err(|e| format!("step {} ({}): {}", i, op, e))?;
        let expect = step.get("expect").cloned().unwrap_or(Value::Null);
        let t0 = Instant::now();
        let got = exec(suite, &mut run, &profile, &step);
        if std::env::var("CONFORMANCE_TIMES").is_ok() {
            eprintln!("  step {} ({}) {:?}", i, op, t0.elapsed());
        }
        let result = check(&run, &step, &expect, got).map_err(|e| format!("step {} ({}): {}", i, op, e))?;
        if let (Some(id), Some(r)) = (step["id"].as_str(), result) {
            run.saved.insert(id.to_string(), r);
        }
    }
    Ok(())
}

#[test]
fn conformance() {
    let work = std::env::temp_dir().join(format!("badbatch-rust-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let dir = conformance_dir();
    let mut suite = Suite {
        bin: server_binary(&work),
        work: work.clone(),
        profiles: read_json(&dir.join("servers.json")).as_object().unwrap().clone(),
        tokens: read_json(&dir.join("tokens.json")).as_object().unwrap().clone(),
        servers: HashMap::new(),
        clients: HashMap::new(),
    };
    // The shared cases, then this client's own (same format) in tests/cases.
    let mut files = Vec::new();
    for d in [dir.join("cases"), Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")] {
        let mut fs: Vec<PathBuf> = std::fs::read_dir(&d)
            .map(|rd| rd.map(|e| e.unwrap().path()).filter(|p| p.extension().map(|e| e == "json").unwrap_or(false)).collect())
            .unwrap_or_default();
        fs.sort();
        files.extend(fs);
    }
    assert!(!files.is_empty(), "no cases");
    let only = std::env::var("CONFORMANCE_CASE").unwrap_or_default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        let case = read_json(f);
        let name = case["name"].as_str().unwrap_or_else(|| f.file_stem().unwrap().to_str().unwrap()).to_string();
        if !name.contains(&only) {
            continue;
        }
        ran += 1;
        let t0 = Instant::now();
        match run_case(&mut suite, &case) {
            Ok(()) => eprintln!("ok   {} ({:.1?})", name, t0.elapsed()),
            Err(e) => {
                eprintln!("FAIL {}: {}", name, e);
                failures.push(format!("{}: {}", name, e));
            }
        }
    }
    drop(suite);
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
    }
    eprintln!("{} cases, {} failed", ran, failures.len());
    assert!(failures.is_empty(), "conformance failures (server logs under {}):\n{}", work.display(), failures.join("\n"));
}
