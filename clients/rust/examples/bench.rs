//! The client benchmark of `clients/BENCH.md`: `bench MODE URL STREAM`.
//!
//! - `append`: 100-byte binary records in batches of 100 (one `append_batch` per batch) from 4
//!   threads for `BENCH_SECONDS` (default 5);
//! - `tail`: tails `STREAM` from `earliest` until `BENCH_RECORDS` (default 200000) arrived.
//!
//! Prints one JSON line on stdout. `BADBATCH_TOKEN` gives a bearer token.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use badbatch::{AppendOptions, Client, Options, Position, Record};

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench append|tail URL STREAM");
        std::process::exit(2);
    }
    let (mode, url, stream) = (args[1].as_str(), args[2].as_str(), args[3].clone());
    let opts = Options { token: std::env::var("BADBATCH_TOKEN").ok().filter(|t| !t.is_empty()), ..Options::default() };
    let client = Client::new(url, opts).unwrap_or_else(|e| fail(&e));
    let (records, seconds) = match mode {
        "append" => append(&client, &stream, Duration::from_secs_f64(env_num("BENCH_SECONDS", 5.0))),
        "tail" => tail(&client, &stream, env_num("BENCH_RECORDS", 200_000.0) as u64),
        m => {
            eprintln!("unknown mode {:?}", m);
            std::process::exit(2);
        }
    };
    println!(
        "{{\"client\":\"rust\",\"mode\":\"{}\",\"records\":{},\"seconds\":{:.3},\"records_per_sec\":{:.1}}}",
        mode,
        records,
        seconds,
        records as f64 / seconds
    );
}

fn fail(e: &badbatch::Error) -> ! {
    eprintln!("bench: {}", e);
    std::process::exit(1);
}

fn append(client: &Client, stream: &str, dur: Duration) -> (u64, f64) {
    let batch: Vec<Record> = (0..100).map(|i| Record::bytes(vec![b'a' + (i % 26) as u8; 100])).collect();
    let batch = Arc::new(batch);
    let total = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let end = t0 + dur;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, stream, batch, total, failed) = (client.clone(), stream.to_string(), batch.clone(), total.clone(), failed.clone());
            std::thread::spawn(move || {
                while Instant::now() < end && !failed.load(Ordering::Relaxed) {
                    match client.append_batch(&stream, &batch, &AppendOptions::default()) {
                        Ok(r) => {
                            total.fetch_add(r.count as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("bench: append: {}", e);
                            failed.store(true, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) {
        std::process::exit(1);
    }
    (total.load(Ordering::Relaxed), secs)
}

fn tail(client: &Client, stream: &str, want: u64) -> (u64, f64) {
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut next = 0i64;
    for rec in client.tail(stream, Position::Earliest) {
        let rec = rec.unwrap_or_else(|e| fail(&e));
        if n == 0 {
            next = rec.offset;
        }
        if rec.offset != next {
            eprintln!("bench: tail: offset {} after {}", rec.offset, next - 1);
            std::process::exit(1);
        }
        next += 1;
        n += 1;
        if n >= want {
            break;
        }
    }
    (n, t0.elapsed().as_secs_f64())
}
