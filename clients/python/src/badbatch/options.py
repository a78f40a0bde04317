"""Client options: a frozen dataclass, defaults filled in, validated on creation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ._version import __version__
from .errors import InvalidOptionsError

__all__ = ["ClientOptions"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Options of a :class:`~badbatch.Client` or :class:`~badbatch.AsyncClient`.

    Set only what you want: every field has its default, values are validated
    when the options are made (:class:`InvalidOptionsError`), and the object is
    immutable, so a client never changes the caller's options. All durations
    are seconds (``float``).
    """

    token: str | None = None
    """Bearer token (``None``: none is sent)."""
    max_retries: int = 5
    """Retries of a retryable failure (0: never)."""
    retry_backoff: float = 0.1
    """The first retry's delay; doubled each time, with full jitter."""
    max_backoff: float = 5.0
    """Cap on one backoff."""
    max_retry_after: float = 30.0
    """A longer ``Retry-After`` is not waited for: the error is raised."""
    request_timeout: float = 30.0
    """One attempt of one request, whole answer included (not tails)."""
    connect_timeout: float = 5.0
    """One TCP (and TLS) connect."""
    tail_idle_timeout: float = 60.0
    """A tail connection silent this long is reopened (the server sends a comment every 15 s)."""
    generate_idempotency_keys: bool = True
    """Give every append without a caller's key a random one, so that it can be retried safely."""
    user_agent: str = f"badbatch-python-client/{__version__}"
    """The ``User-Agent`` header."""
    max_connections: int = 64
    """Idle connections kept per server (the pool; more may be open at once)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.token is not None:
            if not isinstance(self.token, str) or not self.token or any(
                ord(ch) < 0x21 or ord(ch) > 0x7E for ch in self.token
            ):
                problems.append("token must be printable ASCII without spaces")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            problems.append(f"max_retries must be an int >= 0, not {self.max_retries!r}")
        for name in ("retry_backoff", "max_backoff", "max_retry_after"):
            v = getattr(self, name)
            if not _is_number(v) or v < 0:
                problems.append(f"{name} must be a number >= 0, not {v!r}")
        for name in ("request_timeout", "connect_timeout", "tail_idle_timeout"):
            v = getattr(self, name)
            if not _is_number(v) or v <= 0:
                problems.append(f"{name} must be a number > 0, not {v!r}")
        if not problems and self.max_backoff < self.retry_backoff:
            problems.append(f"max_backoff ({self.max_backoff}) must be >= retry_backoff ({self.retry_backoff})")
        if not isinstance(self.generate_idempotency_keys, bool):
            problems.append("generate_idempotency_keys must be a bool")
        if not isinstance(self.user_agent, str) or not self.user_agent or "\n" in self.user_agent or "\r" in self.user_agent:
            problems.append("user_agent must be a non-empty single-line string")
        if not isinstance(self.max_connections, int) or isinstance(self.max_connections, bool) or self.max_connections < 1:
            problems.append(f"max_connections must be an int >= 1, not {self.max_connections!r}")
        if problems:
            raise InvalidOptionsError("; ".join(problems))

    def replace(self, **changes: Any) -> "ClientOptions":
        """A copy with ``changes`` applied (validated; this object is unchanged)."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as e:  # an unknown field
            raise InvalidOptionsError(str(e)) from None


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
