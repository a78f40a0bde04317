//! The data model of `docs/clients/README.md`, and its JSON encoding on the wire.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::time::{format_rfc3339, parse_rfc3339};

/// A record to append: key, value, headers, timestamp.
///
/// A JSON record's value is JSON text (`is_json`), sent as JSON and read back as JSON; any other
/// value is bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The key; `None`: no key.
    pub key: Option<String>,
    /// The value: bytes, or JSON text when `is_json`.
    pub value: Vec<u8>,
    /// The value is JSON text.
    pub is_json: bool,
    /// Headers; empty: none.
    pub headers: BTreeMap<String, String>,
    /// The record's time; `None`: the server's time at append.
    pub timestamp: Option<SystemTime>,
}

impl Record {
    /// A record with a binary value.
    pub fn bytes(value: impl Into<Vec<u8>>) -> Record {
        Record { value: value.into(), ..Record::default() }
    }

    /// A record with a JSON value.
    pub fn json(value: &Value) -> Record {
        Record { value: value.to_string().into_bytes(), is_json: true, ..Record::default() }
    }

    /// A record whose value is this JSON text, checked to be JSON (`bad_request` if not).
    pub fn json_text(text: impl Into<String>) -> Result<Record> {
        let text = text.into();
        serde_json::from_str::<Value>(&text).map_err(|e| Error::new(ErrorKind::BadRequest, format!("value is not JSON: {}", e)))?;
        Ok(Record { value: text.into_bytes(), is_json: true, ..Record::default() })
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<String>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Record {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, t: SystemTime) -> Record {
        self.timestamp = Some(t);
        self
    }

    /// Appends the wire form `{"key"?, "value"|"value_base64", "headers"?, "timestamp"?}`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut field = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if let Some(k) = &self.key {
            field(out, "key");
            write_json_string(out, k);
        }
        if self.is_json {
            field(out, "value");
            out.extend_from_slice(&self.value);
        } else if !self.value.is_empty() {
            field(out, "value_base64");
            out.push(b'"');
            out.extend_from_slice(base64::encode(&self.value).as_bytes());
            out.push(b'"');
        }
        if !self.headers.is_empty() {
            field(out, "headers");
            out.push(b'{');
            for (i, (k, v)) in self.headers.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(out, k);
                out.push(b':');
                write_json_string(out, v);
            }
            out.push(b'}');
        }
        if let Some(t) = self.timestamp {
            field(out, "timestamp");
            out.push(b'"');
            out.extend_from_slice(format_rfc3339(t).as_bytes());
            out.push(b'"');
        }
        out.push(b'}');
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON needs; writing to a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).expect("write to Vec");
}

/// A record as read back: the record plus its stream, offset, seq and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The stream it belongs to.
    pub stream: String,
    /// Its position in its stream.
    pub offset: i64,
    /// Its position in the global log.
    pub seq: i64,
    /// When it was appended (or the time its appender gave).
    pub timestamp: SystemTime,
    /// The key; `None`: no key.
    pub key: Option<String>,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// The value: bytes, or compact JSON text when `is_json`.
    pub value: Vec<u8>,
    /// The value was appended as JSON and reads back as JSON.
    pub is_json: bool,
}

impl StoredRecord {
    /// The value parsed as JSON (`None` for a binary value).
    pub fn json(&self) -> Option<Value> {
        if self.is_json {
            serde_json::from_slice(&self.value).ok()
        } else {
            None
        }
    }

    /// The value as a record for appending elsewhere.
    pub fn to_record(&self) -> Record {
        Record {
            key: self.key.clone(),
            value: self.value.clone(),
            is_json: self.is_json,
            headers: self.headers.clone(),
            timestamp: Some(self.timestamp),
        }
    }

    pub(crate) fn decode(v: &Value, stream: Option<&str>) -> Result<StoredRecord> {
        let m = v.as_object().ok_or_else(|| bad_answer("record is not an object"))?;
        let stream = match (m.get("stream").and_then(Value::as_str), stream) {
            (Some(s), _) => s.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => String::new(),
        };
        let key = match (m.get("key"), m.get("key_base64")) {
            (Some(Value::String(k)), _) => Some(k.clone()),
            (_, Some(Value::String(b))) => {
                let raw = base64::decode(b).map_err(|_| bad_answer("bad key_base64"))?;
                Some(String::from_utf8_lossy(&raw).into_owned())
            }
            _ => None,
        };
        let mut headers = BTreeMap::new();
        if let Some(Value::Object(h)) = m.get("headers") {
            for (k, v) in h {
                headers.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        let (value, is_json) = match (m.get("value"), m.get("value_base64")) {
            (Some(j), _) => (j.to_string().into_bytes(), true),
            (None, Some(Value::String(b))) => (base64::decode(b).map_err(|_| bad_answer("bad value_base64"))?, false),
            _ => (Vec::new(), false),
        };
        let timestamp = m
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .ok_or_else(|| bad_answer("record without a valid timestamp"))?;
        Ok(StoredRecord { stream, offset: int(m, "offset")?, seq: int(m, "seq")?, timestamp, key, headers, value, is_json })
    }
}

pub(crate) fn bad_answer(what: &str) -> Error {
    Error::new(ErrorKind::Internal, format!("cannot decode the server's answer: {}", what))
}

pub(crate) fn int(m: &Map<String, Value>, name: &str) -> Result<i64> {
    m.get(name).and_then(Value::as_i64).ok_or_else(|| bad_answer(&format!("no integer {:?}", name)))
}

pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_answer("not a JSON object")),
    }
}

/// Conditions of an append. Build with struct update syntax
/// (`AppendOptions { close: true, ..Default::default() }`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOptions {
    /// Append only if the stream's last offset is this; `-1`: the stream must be empty.
    pub expected_last_offset: Option<i64>,
    /// A repeat within the server's window appends nothing and answers the first result with
    /// `replayed = true`. 1 to 256 printable ASCII characters, else [`ErrorKind::InvalidOptions`]
    /// before any request. `None`: the client generates one when `generate_idempotency_keys` is
    /// on.
    pub idempotency_key: Option<String>,
    /// An idempotent producer's append: a repeat of an accepted seq appends nothing and answers
    /// the first result (`replayed`), a gap is [`ErrorKind::ProducerSeqGap`], an older epoch
    /// [`ErrorKind::ProducerFenced`]. Such an append is safe to retry. `None`: no producer.
    pub producer: Option<Producer>,
    /// Close the stream once these records are stored, atomically with them.
    pub close: bool,
    /// A writer's sequence label, sent as `Stream-Seq` (1 to 256 printable ASCII characters): it
    /// must sort after the stream's last one, byte by byte, else [`ErrorKind::StreamSeq`] and
    /// nothing is stored. `None`: no label.
    pub stream_seq: Option<String>,
}

/// An idempotent producer's append: its id (not empty), its epoch (incarnation) and the
/// append's seq within the epoch, from 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Producer {
    /// The producer's name, 1 to 256 printable ASCII characters.
    pub id: String,
    /// The producer's incarnation: a restarted producer takes a higher one and starts at seq 0.
    pub epoch: u64,
    /// The append's number within the epoch.
    pub seq: u64,
}

impl Producer {
    /// A producer's append.
    pub fn new(id: impl Into<String>, epoch: u64, seq: u64) -> Producer {
        Producer { id: id.into(), epoch, seq }
    }
}

/// A stream's configuration, for [`crate::Client::create_stream`] and
/// [`crate::Client::fork_stream`]; [`Default`] sets nothing (the server's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamConfig {
    /// The records' content type; `None`: `application/octet-stream`.
    pub content_type: Option<String>,
    /// A sliding lifetime (reads and appends extend it), whole seconds: a fraction of a second
    /// is [`ErrorKind::InvalidOptions`]. Not with `expires_at`.
    pub ttl: Option<std::time::Duration>,
    /// When the stream expires.
    pub expires_at: Option<SystemTime>,
    /// Create the stream closed.
    pub closed: bool,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream.
    pub stream: String,
    /// The first appended record's offset.
    pub first_offset: i64,
    /// The last appended record's offset.
    pub last_offset: i64,
    /// How many records were appended.
    pub count: i64,
    /// The first appended record's seq.
    pub first_seq: i64,
    /// The last appended record's seq.
    pub last_seq: i64,
    /// What the acknowledgement means: `fsynced` under the default sync policy.
    pub durability: String,
    /// The answer is a repeat of an earlier append under the same idempotency key.
    pub replayed: bool,
}

impl AppendResult {
    pub(crate) fn decode(body: &[u8]) -> Result<AppendResult> {
        let m = object(body)?;
        Ok(AppendResult {
            stream: m.get("stream").and_then(Value::as_str).unwrap_or_default().to_string(),
            first_offset: int(&m, "first_offset")?,
            last_offset: int(&m, "last_offset")?,
            count: int(&m, "count")?,
            first_seq: int(&m, "first_seq")?,
            last_seq: int(&m, "last_seq")?,
            durability: m.get("durability").and_then(Value::as_str).unwrap_or_default().to_string(),
            replayed: m.get("replayed").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Where a read or a tail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Position {
    /// The first retained record.
    #[default]
    Earliest,
    /// The next offset to be written: only new records.
    Latest,
    /// That offset.
    Offset(i64),
    /// The first record whose timestamp is at or after this time.
    Time(SystemTime),
}

impl Position {
    /// The query parameter that says it.
    pub(crate) fn query(&self) -> String {
        match self {
            Position::Earliest => "from=earliest".into(),
            Position::Latest => "from=latest".into(),
            Position::Offset(o) => format!("from={}", o),
            Position::Time(t) => format!("from_time={}", format_rfc3339(*t).replace('+', "%2B")),
        }
    }
}

impl From<i64> for Position {
    fn from(o: i64) -> Position {
        Position::Offset(o)
    }
}

impl From<SystemTime> for Position {
    fn from(t: SystemTime) -> Position {
        Position::Time(t)
    }
}

/// One page of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records, in offset order.
    pub records: Vec<StoredRecord>,
    /// Where the next page starts.
    pub next_offset: i64,
}

/// One page of the global log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalPage {
    /// The records, in commit order, each naming its stream.
    pub records: Vec<StoredRecord>,
    /// Where the next page starts.
    pub next_seq: i64,
}

pub(crate) fn decode_records(m: &Map<String, Value>, stream: Option<&str>) -> Result<Vec<StoredRecord>> {
    match m.get("records") {
        Some(Value::Array(a)) => a.iter().map(|r| StoredRecord::decode(r, stream)).collect(),
        Some(Value::Null) | None => Ok(Vec::new()),
        _ => Err(bad_answer("records is not a list")),
    }
}

/// A stream's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream's name.
    pub stream: String,
    /// The first retained offset.
    pub first_offset: i64,
    /// The next offset to be written.
    pub next_offset: i64,
    /// How many records are retained.
    pub records: i64,
    /// Their size in bytes.
    pub bytes: i64,
    /// The last record's timestamp; `None` for an empty stream.
    pub last_timestamp: Option<SystemTime>,
    /// The stream's content type; `None` from a server without the stream lifecycle.
    pub content_type: Option<String>,
    /// The stream takes no more appends.
    pub closed: bool,
    /// The stream's sliding lifetime in seconds; `None`: none.
    pub ttl_seconds: Option<i64>,
    /// When the stream expires; `None`: never.
    pub expires_at: Option<SystemTime>,
    /// The stream a fork was forked from; `None` for a stream that is not a fork.
    pub forked_from: Option<String>,
    /// A fork's offsets below this are its source's records (set with `forked_from`).
    pub fork_offset: Option<i64>,
}

impl StreamConfig {
    /// The JSON fields that are set, into a create's or a fork's body.
    pub(crate) fn put(&self, body: &mut Map<String, Value>) -> Result<()> {
        if let Some(t) = &self.content_type {
            if t.is_empty() {
                return Err(Error::new(ErrorKind::InvalidOptions, "content_type: empty (None is the server's default)"));
            }
            body.insert("content_type".into(), Value::from(t.as_str()));
        }
        if let Some(ttl) = self.ttl {
            if ttl.is_zero() || ttl.subsec_nanos() != 0 {
                return Err(Error::new(
                    ErrorKind::InvalidOptions,
                    format!("ttl {:?}: want a whole number of seconds, more than 0 (the HTTP API has no sub-second TTL)", ttl),
                ));
            }
            body.insert("ttl_seconds".into(), Value::from(ttl.as_secs()));
        }
        if let Some(t) = self.expires_at {
            body.insert("expires_at".into(), Value::from(crate::time::format_rfc3339(t)));
        }
        if self.closed {
            body.insert("closed".into(), Value::Bool(true));
        }
        Ok(())
    }
}

impl StreamInfo {
    pub(crate) fn decode(v: &Value) -> Result<StreamInfo> {
        let m = v.as_object().ok_or_else(|| bad_answer("stream info is not an object"))?;
        let forked_from = m.get("forked_from").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(StreamInfo {
            stream: m.get("stream").and_then(Value::as_str).unwrap_or_default().to_string(),
            first_offset: int(m, "first_offset")?,
            next_offset: int(m, "next_offset")?,
            records: int(m, "records")?,
            bytes: int(m, "bytes")?,
            last_timestamp: m.get("last_timestamp").and_then(Value::as_str).and_then(parse_rfc3339),
            content_type: m.get("content_type").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
            closed: m.get("closed").and_then(Value::as_bool).unwrap_or(false),
            ttl_seconds: m.get("ttl_seconds").and_then(Value::as_i64).filter(|&t| t > 0),
            expires_at: m.get("expires_at").and_then(Value::as_str).and_then(parse_rfc3339),
            forked_from: forked_from.clone(),
            // fork_offset is left out at 0.
            fork_offset: forked_from.map(|_| m.get("fork_offset").and_then(Value::as_i64).unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn encodes_records() {
        let mut out = Vec::new();
        Record::bytes(vec![0u8, 1, 2, 255])
            .with_key("k\"1")
            .with_header("h", "v")
            .with_timestamp(UNIX_EPOCH + Duration::from_secs(1767323045))
            .encode(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"key":"k\"1","value_base64":"AAEC/w==","headers":{"h":"v"},"timestamp":"2026-01-02T03:04:05Z"}"#
        );
        let mut out = Vec::new();
        Record::json(&serde_json::json!({"n": 1})).encode(&mut out);
        assert_eq!(out, br#"{"value":{"n":1}}"#);
        let mut out = Vec::new();
        Record::default().encode(&mut out);
        assert_eq!(out, b"{}");
        assert!(Record::json_text("{nope").is_err());
    }

    #[test]
    fn decodes_stored_records() {
        let v: Value = serde_json::from_str(
            r#"{"offset":3,"seq":9,"timestamp":"2026-01-02T03:04:05Z","key_base64":"aGk=","headers":{"a":"b"},"value":{"x":[1, 2]}}"#,
        )
        .unwrap();
        let r = StoredRecord::decode(&v, Some("s")).unwrap();
        assert_eq!((r.stream.as_str(), r.offset, r.seq), ("s", 3, 9));
        assert_eq!(r.key.as_deref(), Some("hi"));
        assert!(r.is_json);
        assert_eq!(r.value, br#"{"x":[1,2]}"#);
        assert_eq!(r.json().unwrap(), serde_json::json!({"x": [1, 2]}));
        let v: Value = serde_json::from_str(r#"{"offset":0,"seq":0,"timestamp":"2026-01-02T03:04:05Z","value_base64":"AAE="}"#).unwrap();
        let r = StoredRecord::decode(&v, None).unwrap();
        assert_eq!((r.value.as_slice(), r.is_json, r.key.clone()), (&[0u8, 1][..], false, None));
        assert!(StoredRecord::decode(&serde_json::json!({"offset": 0}), None).is_err());
    }

    #[test]
    fn positions() {
        assert_eq!(Position::default().query(), "from=earliest");
        assert_eq!(Position::from(7).query(), "from=7");
        assert_eq!(Position::Time(UNIX_EPOCH).query(), "from_time=1970-01-01T00:00:00Z");
    }
}
