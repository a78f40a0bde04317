//! One error type, [`Error`], carrying one [`ErrorKind`] per kind of `docs/clients/README.md`.

use std::fmt;
use std::time::Duration;

/// What went wrong: one variant per error kind of the BadBatch client vocabulary. The server's
/// kinds are named after their wire code ([`ErrorKind::as_str`]); `InvalidOptions`, `Connection`
/// and `Timeout` are made on the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: malformed input.
    BadRequest,
    /// 400: a bad stream or cursor name.
    InvalidStream,
    /// 401: no token, or an unknown one.
    Unauthorized,
    /// 403: the token lacks the permission or the stream.
    Forbidden,
    /// 404: stream or cursor never written.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 409: `expected_last_offset` did not hold; see [`Error::current_last_offset`].
    OffsetMismatch,
    /// 409: an append to a closed stream.
    StreamClosed,
    /// 409: a create with another configuration, or a fork onto an existing stream.
    StreamExists,
    /// 409: a writer's Stream-Seq label that does not sort after the stream's last one.
    StreamSeq,
    /// 409: an idempotent producer's seq skips one; see [`Error::expected_seq`],
    /// [`Error::received_seq`] and [`Error::producer_epoch`].
    ProducerSeqGap,
    /// 403: an idempotent producer's epoch is older than its current one; see
    /// [`Error::producer_epoch`].
    ProducerFenced,
    /// 409: a cluster membership change was refused.
    MembershipConflict,
    /// 410: offset below retention, or a stream deleted while forks still read it.
    Gone,
    /// 413: a record or request above the server's limits.
    TooLarge,
    /// 415.
    UnsupportedType,
    /// 429: see [`Error::retry_after`]. Retried by the client after `Retry-After`.
    RateLimited,
    /// 500: a server bug, or an answer the client cannot decode.
    Internal,
    /// 503: journal failed, shutting down. Retried with backoff.
    Unavailable,
    /// 503: a cluster without a leader; nothing was stored. Retried after `Retry-After`.
    NoLeader,
    /// 307: a follower's redirect to the leader (followed; seen only when it cannot be).
    NotLeader,
    /// 404: a cluster route on a standalone server.
    NotCluster,
    /// A bad option value, reported before any request.
    InvalidOptions,
    /// The server could not be reached, or the connection broke, after the retries.
    Connection,
    /// A per-call or per-attempt deadline passed.
    Timeout,
}

impl ErrorKind {
    /// Every kind, in the vocabulary's order.
    pub const ALL: [ErrorKind; 25] = [
        ErrorKind::BadRequest,
        ErrorKind::InvalidStream,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::OffsetMismatch,
        ErrorKind::StreamClosed,
        ErrorKind::StreamExists,
        ErrorKind::StreamSeq,
        ErrorKind::ProducerSeqGap,
        ErrorKind::ProducerFenced,
        ErrorKind::MembershipConflict,
        ErrorKind::Gone,
        ErrorKind::TooLarge,
        ErrorKind::UnsupportedType,
        ErrorKind::RateLimited,
        ErrorKind::Internal,
        ErrorKind::Unavailable,
        ErrorKind::NoLeader,
        ErrorKind::NotLeader,
        ErrorKind::NotCluster,
        ErrorKind::InvalidOptions,
        ErrorKind::Connection,
        ErrorKind::Timeout,
    ];

    /// The kind's name: the server's wire code (`offset_mismatch`), or `invalid_options`,
    /// `connection`, `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::InvalidStream => "invalid_stream",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::OffsetMismatch => "offset_mismatch",
            ErrorKind::StreamClosed => "stream_closed",
            ErrorKind::StreamExists => "stream_exists",
            ErrorKind::StreamSeq => "stream_seq",
            ErrorKind::ProducerSeqGap => "producer_seq_gap",
            ErrorKind::ProducerFenced => "producer_fenced",
            ErrorKind::MembershipConflict => "membership_conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UnsupportedType => "unsupported_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NoLeader => "no_leader",
            ErrorKind::NotLeader => "not_leader",
            ErrorKind::NotCluster => "not_cluster",
            ErrorKind::InvalidOptions => "invalid_options",
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// The kind named `s` (the inverse of [`ErrorKind::as_str`]).
    pub fn from_code(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// The kind of an answer whose code the client does not know, by its status.
    pub(crate) fn from_status(status: u16) -> ErrorKind {
        match status {
            307 => ErrorKind::NotLeader,
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::OffsetMismatch,
            410 => ErrorKind::Gone,
            413 => ErrorKind::TooLarge,
            415 => ErrorKind::UnsupportedType,
            429 => ErrorKind::RateLimited,
            502..=504 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    /// True for the kinds after which a tail cannot go on: a retry cannot fix them.
    pub(crate) fn is_permanent_for_tail(self) -> bool {
        matches!(
            self,
            ErrorKind::NotFound
                | ErrorKind::Gone
                | ErrorKind::Forbidden
                | ErrorKind::Unauthorized
                | ErrorKind::BadRequest
                | ErrorKind::InvalidStream
                | ErrorKind::MethodNotAllowed
                | ErrorKind::UnsupportedType
                | ErrorKind::InvalidOptions
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type of the crate: every call answers `Result<T, Error>`.
///
/// [`Error::kind`] says what went wrong; a server's answer also gives [`Error::code`] (the wire
/// code, which is the kind's name), [`Error::message`] and [`Error::status`].
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    code: String,
    message: String,
    status: Option<u16>,
    current_last_offset: Option<i64>,
    producer_epoch: Option<u64>,
    expected_seq: Option<u64>,
    received_seq: Option<u64>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            code: kind.as_str().to_string(),
            message: message.into(),
            status: None,
            current_last_offset: None,
            producer_epoch: None,
            expected_seq: None,
            received_seq: None,
            retry_after: None,
            request_id: None,
        }
    }

    /// An error from a server's answer: `status`, and the body `{"error":{"code","message"}}`
    /// when it is one.
    pub(crate) fn from_answer(status: u16, body: &[u8], retry_after: Option<Duration>, request_id: Option<String>) -> Error {
        let mut code = String::new();
        let mut message = String::new();
        let mut clo = None;
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(serde_json::Value::Object(e)) = m.get("error") {
                if let Some(c) = e.get("code").and_then(|v| v.as_str()) {
                    code = c.to_string();
                }
                if let Some(s) = e.get("message").and_then(|v| v.as_str()) {
                    message = s.to_string();
                }
                clo = e.get("current_last_offset").and_then(|v| v.as_i64());
            }
        }
        let kind = ErrorKind::from_code(&code).unwrap_or_else(|| ErrorKind::from_status(status));
        if code.is_empty() {
            code = kind.as_str().to_string();
        }
        if message.is_empty() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
            message = if text.is_empty() { format!("HTTP {}", status) } else { text };
        }
        Error {
            kind,
            code,
            message,
            status: Some(status),
            current_last_offset: clo,
            producer_epoch: None,
            expected_seq: None,
            received_seq: None,
            retry_after,
            request_id,
        }
    }

    /// Adds what an answer's `Producer-Epoch`, `Producer-Expected-Seq` and
    /// `Producer-Received-Seq` headers say (`header` looks one up by name).
    pub(crate) fn with_producer_headers<'a>(mut self, header: impl Fn(&str) -> Option<&'a str>) -> Error {
        let counter = |name: &str| header(name).and_then(|v| v.trim().parse::<u64>().ok());
        self.producer_epoch = counter("Producer-Epoch");
        self.expected_seq = counter("Producer-Expected-Seq");
        self.received_seq = counter("Producer-Received-Seq");
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error code (`offset_mismatch`), or the kind's name for an error made on the
    /// client's side.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The server's message, or the client's.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the server's answer; `None` for an error made on the client's side.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// For [`ErrorKind::OffsetMismatch`]: the stream's last offset when the append was refused
    /// (`-1`: the stream is empty).
    pub fn current_last_offset(&self) -> Option<i64> {
        self.current_last_offset
    }

    /// For [`ErrorKind::ProducerFenced`] and [`ErrorKind::ProducerSeqGap`]: the producer's
    /// current epoch (`Producer-Epoch`).
    pub fn producer_epoch(&self) -> Option<u64> {
        self.producer_epoch
    }

    /// For [`ErrorKind::ProducerSeqGap`]: the seq the server expected (`Producer-Expected-Seq`).
    pub fn expected_seq(&self) -> Option<u64> {
        self.expected_seq
    }

    /// For [`ErrorKind::ProducerSeqGap`]: the seq the append carried (`Producer-Received-Seq`).
    pub fn received_seq(&self) -> Option<u64> {
        self.received_seq
    }

    /// The server's `Retry-After`, on `rate_limited`, `unavailable` and `no_leader`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The server's request ID (`X-Request-Id`), which names the request in its log.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "badbatch: {}", self.kind)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {})", s)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(o) = self.current_last_offset {
            write!(f, " (current last offset {})", o)?;
        }
        if let (Some(e), Some(r)) = (self.expected_seq, self.received_seq) {
            write!(f, " (expected seq {}, received {})", e, r)?;
        }
        if let (ErrorKind::ProducerFenced, Some(e)) = (self.kind, self.producer_epoch) {
            write!(f, " (current epoch {})", e)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `Result<T, badbatch::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl ErrorKind {
    /// The HTTP status the server answers with this kind (`None` for the client's own kinds).
    pub fn status(self) -> Option<u16> {
        Some(match self {
            ErrorKind::BadRequest | ErrorKind::InvalidStream => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden | ErrorKind::ProducerFenced => 403,
            ErrorKind::NotFound | ErrorKind::NotCluster => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::OffsetMismatch
            | ErrorKind::StreamClosed
            | ErrorKind::StreamExists
            | ErrorKind::StreamSeq
            | ErrorKind::ProducerSeqGap
            | ErrorKind::MembershipConflict => 409,
            ErrorKind::Gone => 410,
            ErrorKind::TooLarge => 413,
            ErrorKind::UnsupportedType => 415,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable | ErrorKind::NoLeader => 503,
            ErrorKind::NotLeader => 307,
            ErrorKind::InvalidOptions | ErrorKind::Connection | ErrorKind::Timeout => return None,
        })
    }
}

impl Error {
    /// An SSE `event: error` (its data is the error JSON, with no HTTP status of its own).
    pub(crate) fn from_event(data: &[u8]) -> Error {
        let mut e = Error::from_answer(500, data, None, None);
        e.status = e.kind.status();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::from_code("nope"), None);
    }

    #[test]
    fn from_answer_decodes_the_body() {
        let e = Error::from_answer(409, br#"{"error":{"code":"offset_mismatch","message":"want 3","current_last_offset":7}}"#, None, None);
        assert_eq!(e.kind(), ErrorKind::OffsetMismatch);
        assert_eq!(e.code(), "offset_mismatch");
        assert_eq!(e.message(), "want 3");
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.current_last_offset(), Some(7));
        let e = Error::from_answer(503, br#"{"error":{"code":"no_leader","message":"x"}}"#, Some(Duration::from_secs(1)), None);
        assert_eq!(e.kind(), ErrorKind::NoLeader);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        let e = Error::from_answer(502, b"bad gateway", None, None);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.message(), "bad gateway");
        let e = Error::from_answer(418, b"", None, None);
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
