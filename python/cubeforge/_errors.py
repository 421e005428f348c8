"""Exceptions: one class per kind of failure, each also the matching built-in exception.

Every exception raised by cubeforge is a :class:`CubeforgeError` with ``location`` (the path,
URL, store key or ``recipe:line`` involved) and ``message`` (one line naming what and where).
"""

from __future__ import annotations

import re


class CubeforgeError(Exception):
    """Base class of every cubeforge error.

    Attributes:
        location: the path, URL, store key or ``recipe:line`` the error is about ("" if none).
        message: the whole one-line message, as the command-line tool prints it.
    """

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:  # KeyError quotes its argument; keep the line as it is
        return self.message


class NotFoundError(CubeforgeError, FileNotFoundError):
    """Nothing exists at the location."""


class NotZarrError(CubeforgeError, ValueError):
    """The location exists but holds no Zarr metadata."""


class InvalidUrlError(CubeforgeError, ValueError):
    """A path or URL that cannot be parsed or routed."""


class InvalidMetadataError(CubeforgeError, ValueError):
    """Metadata that cannot be parsed or is inconsistent."""


class UnsupportedError(CubeforgeError, NotImplementedError):
    """A codec, data type, format or feature cubeforge cannot read."""


class CorruptChunkError(CubeforgeError, OSError):
    """A stored chunk that cannot be decoded (truncated, corrupt, wrong codec)."""


class StorageError(CubeforgeError, OSError):
    """The storage backend failed (a request, a permission, a full disk)."""


class MissingError(CubeforgeError, KeyError):
    """A variable, dimension or coordinate that is not in the dataset."""


class DestinationNotEmptyError(CubeforgeError, FileExistsError):
    """A destination that already holds data; pass ``overwrite=True`` to replace a cube."""


class RecipeError(CubeforgeError, ValueError):
    """A recipe that cannot be used. ``location`` is ``file:line``; ``line`` the line number."""

    @property
    def line(self) -> int | None:
        m = re.search(r":(\d+)$", self.location)
        return int(m.group(1)) if m else None


class FileSystemError(CubeforgeError, OSError):
    """A local file-system operation failed."""


class CredentialsError(CubeforgeError, PermissionError):
    """Credentials or configuration that cannot be used (values are never shown)."""


class RefusedError(CubeforgeError, PermissionError):
    """An operation refused for safety (removing a bucket root, overlapping input and output)."""


class CombineError(CubeforgeError, ValueError):
    """Inputs or files that cannot be joined or merged."""


class LockedError(CubeforgeError, BlockingIOError):
    """A destination another writer holds; wait, or pass ``break_lock=True``."""


class TransferError(CubeforgeError, OSError):
    """A copy that stopped on an error; the message says what completed before it."""


class BuildInterrupted(CubeforgeError, InterruptedError):
    """A build stopped on request before it finished (the cube is left unfinished)."""


class BatchError(CubeforgeError, ValueError):
    """A :class:`cubeforge.Batches` configuration that cannot be used."""


_KINDS = {c.__name__: c for c in (
    NotFoundError, NotZarrError, InvalidUrlError, InvalidMetadataError, UnsupportedError,
    CorruptChunkError, StorageError, MissingError, DestinationNotEmptyError, RecipeError,
    FileSystemError, CredentialsError, RefusedError, CombineError, LockedError, TransferError,
    BuildInterrupted, BatchError, CubeforgeError,
)}


def from_native(kind: str, location: str, message: str) -> CubeforgeError:
    """The exception the native module raises for an error of ``kind``."""
    return _KINDS.get(kind, CubeforgeError)(message, location)


__all__ = [name for name in _KINDS] + ["from_native"]
