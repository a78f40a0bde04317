//! Client options: the caller sets what it wants, [`Default`] fills in the rest, and
//! [`crate::Client::new`] validates every value (`invalid_options`) without changing them.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The client's options. Build them with struct update syntax
/// (`Options { token: Some(t), ..Default::default() }`) or with [`Options::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Bearer token. Default: none.
    pub token: Option<String>,
    /// Retries of a retryable failure (0: never). Default 5.
    pub max_retries: u32,
    /// The first retry's delay; doubled each time, with full jitter. Default 100 ms.
    pub retry_backoff: Duration,
    /// Cap on one backoff. Default 5 s.
    pub max_backoff: Duration,
    /// A longer `Retry-After` is not waited for: the error is returned. Default 30 s.
    pub max_retry_after: Duration,
    /// One attempt of one request, whole answer included (not tails). Default 30 s.
    pub request_timeout: Duration,
    /// One TCP (and TLS) connect. Default 5 s.
    pub connect_timeout: Duration,
    /// A tail connection silent this long is reopened (the server sends a comment every 15 s).
    /// Default 60 s.
    pub tail_idle_timeout: Duration,
    /// Generate an idempotency key for every append that has none, so that appends are retried
    /// without duplicates. Default on.
    pub generate_idempotency_keys: bool,
    /// The `User-Agent`. Default `badbatch-rust-client/<version>`.
    pub user_agent: String,
    /// Idle keep-alive connections kept per server. Default 64.
    pub max_idle_connections: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token: None,
            max_retries: 5,
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            tail_idle_timeout: Duration::from_secs(60),
            generate_idempotency_keys: true,
            user_agent: concat!("badbatch-rust-client/", env!("CARGO_PKG_VERSION")).to_string(),
            max_idle_connections: 64,
        }
    }
}

impl Options {
    /// A builder that starts from the defaults.
    pub fn builder() -> OptionsBuilder {
        OptionsBuilder { opts: Options::default() }
    }

    /// Checks every value; the error is [`ErrorKind::InvalidOptions`].
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorKind::InvalidOptions, m));
        if let Some(t) = &self.token {
            if t.is_empty() || !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return bad("token: want printable ASCII without spaces".into());
            }
        }
        for (name, d) in [
            ("retry_backoff", self.retry_backoff),
            ("max_backoff", self.max_backoff),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("tail_idle_timeout", self.tail_idle_timeout),
        ] {
            if d.is_zero() {
                return bad(format!("{}: want a positive duration", name));
            }
        }
        if self.max_backoff < self.retry_backoff {
            return bad(format!("max_backoff {:?} is below retry_backoff {:?}", self.max_backoff, self.retry_backoff));
        }
        if self.max_retries > 1000 {
            return bad(format!("max_retries {}: at most 1000", self.max_retries));
        }
        if self.user_agent.is_empty() || self.user_agent.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return bad("user_agent: want a non-empty header value".into());
        }
        Ok(())
    }
}

/// Builds [`Options`] from the defaults; [`OptionsBuilder::build`] validates.
#[derive(Debug, Clone)]
pub struct OptionsBuilder {
    opts: Options,
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $t:ty) => {
        $(#[$m])*
        pub fn $name(mut self, v: $t) -> Self {
            self.opts.$name = v;
            self
        }
    };
}

impl OptionsBuilder {
    /// Bearer token.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.opts.token = Some(t.into());
        self
    }
    setter!(/// See [`Options::max_retries`].
        max_retries: u32);
    setter!(/// See [`Options::retry_backoff`].
        retry_backoff: Duration);
    setter!(/// See [`Options::max_backoff`].
        max_backoff: Duration);
    setter!(/// See [`Options::max_retry_after`].
        max_retry_after: Duration);
    setter!(/// See [`Options::request_timeout`].
        request_timeout: Duration);
    setter!(/// See [`Options::connect_timeout`].
        connect_timeout: Duration);
    setter!(/// See [`Options::tail_idle_timeout`].
        tail_idle_timeout: Duration);
    setter!(/// See [`Options::generate_idempotency_keys`].
        generate_idempotency_keys: bool);
    setter!(/// See [`Options::max_idle_connections`].
        max_idle_connections: usize);
    /// See [`Options::user_agent`].
    pub fn user_agent(mut self, v: impl Into<String>) -> Self {
        self.opts.user_agent = v.into();
        self
    }

    /// The options, validated.
    pub fn build(self) -> Result<Options> {
        self.opts.validate()?;
        Ok(self.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_vocabulary() {
        let o = Options::default();
        assert_eq!(o.max_retries, 5);
        assert_eq!(o.retry_backoff, Duration::from_millis(100));
        assert_eq!(o.max_backoff, Duration::from_secs(5));
        assert_eq!(o.max_retry_after, Duration::from_secs(30));
        assert_eq!(o.request_timeout, Duration::from_secs(30));
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.tail_idle_timeout, Duration::from_secs(60));
        assert!(o.generate_idempotency_keys);
        assert!(o.user_agent.starts_with("badbatch-rust-client/"));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn builder_fills_and_validates() {
        let o = Options::builder().token("abcdefabcdefabcdef").max_retries(0).build().unwrap();
        assert_eq!(o.token.as_deref(), Some("abcdefabcdefabcdef"));
        assert_eq!(o.max_retries, 0);
        assert_eq!(o.request_timeout, Duration::from_secs(30));
        for b in [
            Options::builder().request_timeout(Duration::ZERO),
            Options::builder().retry_backoff(Duration::from_secs(10)),
            Options::builder().token("has space"),
            Options::builder().user_agent(""),
        ] {
            assert_eq!(b.build().unwrap_err().kind(), ErrorKind::InvalidOptions);
        }
    }
}
