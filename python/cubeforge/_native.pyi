"""Type stubs of the native module (Rust, pyo3). Users call the wrappers in ``cubeforge``."""

from typing import Iterator

import numpy as np
import numpy.typing as npt

__version__: str

def build(
    name: str, text: str, input: str | None = ..., output: str | None = ...,
    overwrite: bool = ..., resume: bool = ..., dry_run: bool = ..., break_lock: bool = ...,
    jobs: int = ..., memory_limit: int = ..., progress: bool = ..., skip_unreadable: bool = ...,
) -> str: ...
def convert_recipe(
    sources: list[str], dest: str, concat: str | None = ..., time_from: str | None = ...,
    variables: list[str] = ..., chunks: str | None = ..., zarr_format: int = ...,
    bands: list[str] = ..., group: str = ...,
) -> str: ...
def info(url: str, group: str = ..., concat: str | None = ..., verify: bool = ...) -> tuple[str, list[str]]: ...
def ls(url: str, long: bool = ..., recursive: bool = ..., anon: bool = ..., retries: int = ...) -> str: ...
def du(url: str, anon: bool = ..., retries: int = ...) -> str: ...
def transfer(
    src: str, dst: str, sync: bool = ..., checksum: bool = ..., delete: bool = ...,
    dry_run: bool = ..., break_lock: bool = ..., concurrency: int = ..., progress: bool = ...,
    anon: bool = ..., retries: int = ...,
) -> str: ...
def rm(
    url: str, recursive: bool = ..., force_root: bool = ..., dry_run: bool = ...,
    concurrency: int = ..., anon: bool = ..., retries: int = ...,
) -> str: ...
def write_example(out: str, days: int = ..., seed: int = ..., overwrite: bool = ...) -> None: ...
def open(
    url: str, concat: str | None = ..., group: str = ..., bands: list[str] | None = ...,
    time_from: str | None = ...,
) -> Reader: ...

class Reader:
    def describe(self) -> str: ...
    def read(self, name: str, start: list[int], shape: list[int]) -> np.ndarray: ...
    def read_f32(self, name: str, start: list[int], shape: list[int]) -> npt.NDArray[np.float32]: ...

class BatchIter(Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]):
    def __next__(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
    def counters(self) -> tuple[int, int, int]: ...
    def close(self) -> None: ...

class Loader:
    def __init__(
        self, reader: Reader, features: list[str], targets: list[str], sample_dims: list[str],
        sizes: list[int], means: list[float], stds: list[float], fill_nan: float | None,
        layout: list[str],
    ) -> None: ...
    def epoch(
        self, starts: npt.NDArray[np.int64], batch_size: int, drop_last: bool = ...,
        prefetch: int = ..., jobs: int = ...,
    ) -> BatchIter: ...
