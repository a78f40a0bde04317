"""The official Python client of BadBatch, a persistent log store with an HTTP API.

``Client`` is the sync client, ``AsyncClient`` the asyncio one; both have the
same methods (docs/clients/python.md).
"""

from ._version import __version__
from .aio import AsyncClient, AsyncTail
from .client import Client, Tail
from .errors import (
    ERROR_KINDS,
    BadBatchError,
    BadRequestError,
    ConnectionFailedError,
    ForbiddenError,
    GoneError,
    InternalError,
    InvalidOptionsError,
    InvalidStreamError,
    MembershipConflictError,
    MethodNotAllowedError,
    NoLeaderError,
    NotClusterError,
    NotFoundError,
    NotLeaderError,
    OffsetMismatchError,
    RateLimitedError,
    RequestTimeoutError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    UnsupportedTypeError,
)
from .models import EARLIEST, LATEST, AppendResult, GlobalPage, Page, Position, Record, StoredRecord, StreamInfo
from .options import ClientOptions

__all__ = [
    "__version__",
    "Client",
    "Tail",
    "AsyncClient",
    "AsyncTail",
    "ClientOptions",
    "Record",
    "StoredRecord",
    "AppendResult",
    "Page",
    "GlobalPage",
    "StreamInfo",
    "Position",
    "EARLIEST",
    "LATEST",
    "ERROR_KINDS",
    "BadBatchError",
    "BadRequestError",
    "InvalidStreamError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "MethodNotAllowedError",
    "OffsetMismatchError",
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
]
