"""The data model (docs/clients/README.md): records, positions and results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Mapping, Union

__all__ = [
    "Record",
    "StoredRecord",
    "AppendResult",
    "Page",
    "GlobalPage",
    "StreamInfo",
    "StreamConfig",
    "Producer",
    "Position",
    "EARLIEST",
    "LATEST",
]

EARLIEST: Final = "earliest"
"""The first retained record (the default position)."""
LATEST: Final = "latest"
"""The next offset to be written: only new records."""

Position = Union[Literal["earliest", "latest"], int, datetime]
"""Where a read or a tail starts: ``"earliest"``, ``"latest"``, an offset, or a time."""


@dataclass(frozen=True, slots=True)
class Record:
    """A record to append.

    ``value`` is bytes; when ``is_json`` is true it is JSON text (UTF-8), and the
    record reads back as JSON. Use :meth:`Record.json` to build one from a
    Python value. ``timestamp`` must be timezone-aware (``None``: the server's
    time).
    """

    value: bytes = b""
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timestamp: datetime | None = None
    is_json: bool = False

    @classmethod
    def json(
        cls,
        value: Any,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timestamp: datetime | None = None,
    ) -> "Record":
        """A JSON record whose value is ``value`` encoded as JSON."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return cls(text.encode("utf-8"), key=key, headers=dict(headers or {}), timestamp=timestamp, is_json=True)


@dataclass(frozen=True)
class StoredRecord:
    """A record as read back: the record plus its stream, offset, seq and timestamp.

    A JSON record's ``value`` is its JSON text, compacted (``is_json`` true);
    :meth:`json` parses it.
    """

    stream: str
    offset: int
    seq: int
    timestamp: datetime
    value: bytes
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    is_json: bool = False

    def json(self) -> Any:
        """The value parsed as JSON (for a JSON record, or any value holding JSON text)."""
        return json.loads(self.value)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The answer to an append."""

    stream: str
    first_offset: int
    last_offset: int
    count: int
    first_seq: int
    last_seq: int
    durability: str
    """What the acknowledgement means: ``fsynced`` under the default sync policy."""
    replayed: bool
    """True when the server answered an earlier append with the same idempotency key."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a stream: its records and where the next page starts."""

    records: list[StoredRecord]
    next_offset: int


@dataclass(frozen=True, slots=True)
class GlobalPage:
    """One page of the global log (every record names its stream) and where the next starts."""

    records: list[StoredRecord]
    next_seq: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream's description (``last_timestamp`` is ``None`` for an empty stream).

    ``content_type`` is the stream's configured content type, ``closed`` says
    it takes no more appends, ``ttl_seconds`` and ``expires_at`` are its
    lifetime (``None``: none), and a fork names its source in ``forked_from``
    and the offset below which it reads the source in ``fork_offset``.
    """

    stream: str
    first_offset: int
    next_offset: int
    records: int
    bytes: int
    last_timestamp: datetime | None = None
    content_type: str | None = None
    closed: bool = False
    ttl_seconds: int | None = None
    expires_at: datetime | None = None
    forked_from: str | None = None
    fork_offset: int | None = None


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """A stream's configuration, for :meth:`~badbatch.Client.create_stream` and ``fork_stream``.

    ``content_type`` (``None``: the server's default,
    ``application/octet-stream``); ``ttl`` a sliding lifetime in whole seconds
    (reads and appends extend it; a fraction of a second is
    :class:`~badbatch.InvalidOptionsError`) or ``expires_at`` an aware
    ``datetime`` (not both); ``closed`` creates the stream closed.
    """

    content_type: str | None = None
    ttl: float | None = None
    expires_at: datetime | None = None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Producer:
    """An idempotent producer's append (``producer=`` of an append).

    ``id`` names the producer (not empty), ``epoch`` its incarnation and ``seq``
    the append's number within the epoch, from 0. The server appends the next
    seq, answers a repeat with the first result (``replayed=True``), refuses a
    gap with :class:`~badbatch.ProducerSeqGapError` and an older epoch with
    :class:`~badbatch.ProducerFencedError`.
    """

    id: str
    epoch: int = 0
    seq: int = 0
