"""Typed errors: one base class, one subclass per error kind.

Every error the server answers is one kind, named after its wire code
(docs/clients/README.md, Errors). Three kinds are made on the client's side:
``invalid_options``, ``connection`` and ``timeout``.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

__all__ = [
    "BadBatchError",
    "BadRequestError",
    "InvalidStreamError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "MethodNotAllowedError",
    "OffsetMismatchError",
    "StreamClosedError",
    "StreamExistsError",
    "StreamSeqError",
    "ProducerSeqGapError",
    "ProducerFencedError",
    "MembershipConflictError",
    "GoneError",
    "TooLargeError",
    "UnsupportedTypeError",
    "RateLimitedError",
    "InternalError",
    "UnavailableError",
    "NoLeaderError",
    "NotLeaderError",
    "NotClusterError",
    "InvalidOptionsError",
    "ConnectionFailedError",
    "RequestTimeoutError",
    "ERROR_KINDS",
    "error_from_answer",
]


class BadBatchError(Exception):
    """The base of every error this client raises.

    ``code`` is the error kind (the server's wire code, or ``invalid_options``,
    ``connection``, ``timeout`` for errors made by the client), ``message`` the
    server's (or the client's) message, ``status`` the HTTP status (``None``
    when no answer was received), ``request_id`` the server's ``X-Request-Id``
    and ``retry_after`` the server's ``Retry-After`` in seconds, if any.
    """

    kind: str = "unknown"
    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code: str = code if code is not None else self.kind
        self.message: str = message
        self.status: int | None = status if status is not None else self.default_status
        self.request_id: str | None = request_id
        self.retry_after: float | None = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class BadRequestError(BadBatchError):
    """400 ``bad_request``: malformed input."""

    kind = "bad_request"
    default_status = 400


class InvalidStreamError(BadBatchError):
    """400 ``invalid_stream``: a bad stream or cursor name."""

    kind = "invalid_stream"
    default_status = 400


class UnauthorizedError(BadBatchError):
    """401 ``unauthorized``: no token, or an unknown one."""

    kind = "unauthorized"
    default_status = 401


class ForbiddenError(BadBatchError):
    """403 ``forbidden``: the token lacks the permission or the stream."""

    kind = "forbidden"
    default_status = 403


class NotFoundError(BadBatchError):
    """404 ``not_found``: a stream or cursor that was never written."""

    kind = "not_found"
    default_status = 404


class MethodNotAllowedError(BadBatchError):
    """405 ``method_not_allowed``."""

    kind = "method_not_allowed"
    default_status = 405


class OffsetMismatchError(BadBatchError):
    """409 ``offset_mismatch``: ``expected_last_offset`` did not hold.

    ``current_last_offset`` is the stream's last offset at the time (-1: empty).
    """

    kind = "offset_mismatch"
    default_status = 409

    def __init__(self, message: str, *, current_last_offset: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.current_last_offset: int | None = current_last_offset


class StreamClosedError(BadBatchError):
    """409 ``stream_closed``: an append to a closed stream."""

    kind = "stream_closed"
    default_status = 409


class StreamExistsError(BadBatchError):
    """409 ``stream_exists``: a create with another configuration, or a fork onto an existing stream."""

    kind = "stream_exists"
    default_status = 409


class StreamSeqError(BadBatchError):
    """409 ``stream_seq``: a writer's Stream-Seq label that does not sort after the stream's last one."""

    kind = "stream_seq"
    default_status = 409


class ProducerSeqGapError(BadBatchError):
    """409 ``producer_seq_gap``: a producer seq that skips one.

    ``expected_seq`` is the seq the server wanted, ``received_seq`` the one it
    got, and ``producer_epoch`` the producer's current epoch (``None`` when the
    answer did not say).
    """

    kind = "producer_seq_gap"
    default_status = 409

    def __init__(self, message: str, *, expected_seq: int | None = None, received_seq: int | None = None,
                 producer_epoch: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.expected_seq: int | None = expected_seq
        self.received_seq: int | None = received_seq
        self.producer_epoch: int | None = producer_epoch


class ProducerFencedError(BadBatchError):
    """403 ``producer_fenced``: a producer epoch older than the current one.

    ``producer_epoch`` is the producer's current epoch (``None`` when the answer
    did not say).
    """

    kind = "producer_fenced"
    default_status = 403

    def __init__(self, message: str, *, producer_epoch: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.producer_epoch: int | None = producer_epoch


class MembershipConflictError(BadBatchError):
    """409 ``membership_conflict``: a cluster membership change was refused."""

    kind = "membership_conflict"
    default_status = 409


class GoneError(BadBatchError):
    """410 ``gone``: the offset is below retention, or the stream was deleted while forks still read it."""

    kind = "gone"
    default_status = 410


class TooLargeError(BadBatchError):
    """413 ``too_large``: a record or request above the server's limits."""

    kind = "too_large"
    default_status = 413


class UnsupportedTypeError(BadBatchError):
    """415 ``unsupported_type``."""

    kind = "unsupported_type"
    default_status = 415


class RateLimitedError(BadBatchError):
    """429 ``rate_limited``; ``retry_after`` says how long to wait."""

    kind = "rate_limited"
    default_status = 429


class InternalError(BadBatchError):
    """500 ``internal`` (a server bug), or an answer the client cannot decode."""

    kind = "internal"
    default_status = 500


class UnavailableError(BadBatchError):
    """503 ``unavailable``: the journal failed, or the server is shutting down."""

    kind = "unavailable"
    default_status = 503


class NoLeaderError(BadBatchError):
    """503 ``no_leader``: a cluster without a leader; nothing was stored."""

    kind = "no_leader"
    default_status = 503


class NotLeaderError(BadBatchError):
    """307 ``not_leader``: a follower's redirect (raised only when it cannot be followed)."""

    kind = "not_leader"
    default_status = 307


class NotClusterError(BadBatchError):
    """404 ``not_cluster``: a cluster route on a standalone server."""

    kind = "not_cluster"
    default_status = 404


class InvalidOptionsError(BadBatchError, ValueError):
    """``invalid_options``: a bad option or argument, found before any request."""

    kind = "invalid_options"


class ConnectionFailedError(BadBatchError):
    """``connection``: the server could not be reached, or the connection broke (after the retries)."""

    kind = "connection"

    def __init__(self, message: str, *, sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.sent: bool = sent
        """False when the request surely never reached the server (e.g. connection refused)."""


class RequestTimeoutError(BadBatchError):
    """``timeout``: a per-attempt or per-call deadline passed."""

    kind = "timeout"


_ALL: tuple[type[BadBatchError], ...] = (
        BadRequestError,
        InvalidStreamError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        MethodNotAllowedError,
        OffsetMismatchError,
        StreamClosedError,
        StreamExistsError,
        StreamSeqError,
        ProducerSeqGapError,
        ProducerFencedError,
        MembershipConflictError,
        GoneError,
        TooLargeError,
        UnsupportedTypeError,
        RateLimitedError,
        InternalError,
        UnavailableError,
        NoLeaderError,
        NotLeaderError,
        NotClusterError,
        InvalidOptionsError,
        ConnectionFailedError,
        RequestTimeoutError,
)
ERROR_KINDS: dict[str, type[BadBatchError]] = {cls.kind: cls for cls in _ALL}

# The kind to assume from the status when an answer carries no known code.
_STATUS_KINDS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "offset_mismatch",
    410: "gone",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
    307: "not_leader",
}


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        secs = float(value.strip())
    except ValueError:
        return None  # an HTTP date: not sent by BadBatch; ignored
    return secs if secs >= 0 else None


def _counter(value: str | None) -> int | None:
    """A Producer-* header's decimal counter (``None`` when absent or malformed)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def error_from_answer(status: int, headers: Mapping[str, str], body: bytes) -> BadBatchError:
    """The typed error for a non-2xx answer (``headers`` keys lower-case)."""
    code: str | None = None
    message = ""
    extra: dict[str, Any] = {}
    try:
        doc = json.loads(body)
        err = doc["error"]
        code = str(err["code"])
        message = str(err.get("message", ""))
        if "current_last_offset" in err:
            extra["current_last_offset"] = int(err["current_last_offset"])
    except Exception:
        message = body[:512].decode("utf-8", "replace") or f"HTTP {status}"
    kind = code if code in ERROR_KINDS else _STATUS_KINDS.get(status, "internal" if status >= 500 else "bad_request")
    cls = ERROR_KINDS[kind]
    kw: dict[str, Any] = dict(
        code=code or kind,
        status=status,
        request_id=headers.get("x-request-id"),
        retry_after=_parse_retry_after(headers.get("retry-after")),
    )
    if cls is OffsetMismatchError:
        kw["current_last_offset"] = extra.get("current_last_offset")
    elif cls is ProducerSeqGapError:
        kw["expected_seq"] = _counter(headers.get("producer-expected-seq"))
        kw["received_seq"] = _counter(headers.get("producer-received-seq"))
        kw["producer_epoch"] = _counter(headers.get("producer-epoch"))
    elif cls is ProducerFencedError:
        kw["producer_epoch"] = _counter(headers.get("producer-epoch"))
    return cls(message, **kw)
