"""cubeforge: analysis-ready, ML-ready Zarr data cubes from gridded Earth-observation data.

The engine runs in this process, with the GIL released while it works:

- :func:`build`, :func:`convert`: cubes from recipes or from files, the bytes ``cubeforge
  build`` writes;
- :func:`info`, :func:`ls`, :func:`du`, :func:`cp`, :func:`sync`, :func:`rm`: the
  command-line tool's inspection and transfer commands;
- :func:`open_dataset` (and ``xr.open_dataset(path, engine="cubeforge")``): Zarr, NetCDF and
  GeoTIFF read lazily, chunks decoded in Rust on all cores;
- :class:`Batches`: training batches with splits, training-split statistics, masks, seeded
  shuffling, sharding and prefetch, and torch / tf.data adapters.

Every failure is a :class:`CubeforgeError` subclass naming its kind (see ``cubeforge._errors``).
See docs/python.md.
"""

from ._api import (
    BuildReport,
    build,
    convert,
    cp,
    du,
    info,
    ls,
    rm,
    sync,
    write_example,
)
from ._errors import (
    BatchError,
    BuildInterrupted,
    CombineError,
    CorruptChunkError,
    CredentialsError,
    CubeforgeError,
    DestinationNotEmptyError,
    FileSystemError,
    InvalidMetadataError,
    InvalidUrlError,
    LockedError,
    MissingError,
    NotFoundError,
    NotZarrError,
    RecipeError,
    RefusedError,
    StorageError,
    TransferError,
    UnsupportedError,
)
from ._native import __version__
from ._xarray import UnreadableVariableWarning, open_dataset
from .batches import Batches

__all__ = [
    "Batches", "BuildReport", "build", "convert", "cp", "du", "info", "ls", "open_dataset",
    "rm", "sync", "write_example", "__version__",
    "BatchError", "BuildInterrupted", "CombineError", "CorruptChunkError", "CredentialsError",
    "CubeforgeError", "DestinationNotEmptyError", "FileSystemError", "InvalidMetadataError",
    "InvalidUrlError", "LockedError", "MissingError", "NotFoundError", "NotZarrError",
    "RecipeError", "RefusedError", "StorageError", "TransferError", "UnsupportedError",
    "UnreadableVariableWarning",
]
