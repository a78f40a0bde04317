//! The official Rust client for [BadBatch](https://github.com/badbatch/badbatch), a persistent
//! log store with an HTTP API.
//!
//! A blocking client on [`ureq`]: [`Client`] is `Send + Sync`, pools its keep-alive
//! connections, and is meant to be made once per server and shared by every thread.
//!
//! ```no_run
//! use badbatch::{AppendOptions, Client, Options, Position, Record};
//!
//! let client = Client::new("http://127.0.0.1:8080", Options { token: Some("my-token-0123456789".into()), ..Options::default() })?;
//! let res = client.append("orders", &Record::json(&serde_json::json!({"id": 1})), &AppendOptions::default())?;
//! let page = client.read("orders", Position::Offset(res.first_offset), Some(100))?;
//! for rec in client.tail("orders", Position::Latest) {
//!     let rec = rec?;
//!     println!("{} {:?}", rec.offset, rec.json());
//! #   break;
//! }
//! # Ok::<(), badbatch::Error>(())
//! ```
//!
//! The vocabulary (names, options, error kinds) is the one every BadBatch client follows:
//! `docs/clients/README.md`; this crate's guide is `docs/clients/rust.md`.

#![warn(missing_docs)]

mod client;
mod error;
mod options;
mod tail;
mod time;
mod types;

pub use client::{new_idempotency_key, Client, Pages};
pub use error::{Error, ErrorKind, Result};
pub use options::{Options, OptionsBuilder};
pub use tail::Tail;
#[cfg(feature = "stream")]
pub use tail::TailStream;
pub use time::{format_rfc3339, parse_rfc3339};
pub use types::{AppendOptions, AppendResult, GlobalPage, Page, Position, Producer, Record, StoredRecord, StreamConfig, StreamInfo};

/// Re-exported: JSON values of records ([`Record::json`], [`StoredRecord::json`]).
pub use serde_json;
