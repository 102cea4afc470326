"""Arrays larger than memory: uncompressed `.npy` files written chunk by chunk and read by
position, rows decoded on demand, and tf.data pipelines that read batches by index.

A split's decoded images (and a split's backbone features) live in one `.npy` file under the
home's cache. `NpyWriter` writes it while decoding, never holding more than a chunk; `DiskRows`
opens it with `np.load(mmap_mode="r")` for its header and reads rows with positional reads
(`os.preadv` into a fresh buffer), so a pass over a file of any size leaves no resident copy of
it in the process (mapped pages that were touched would count in its RSS). `DecodedRows` is the
same interface over image files decoded each time they are read, in parallel: the path for a
split too large for the cache. `index_dataset` is the tf.data pipeline over any of them: a
per-epoch permutation of indexes (seeded; the same order `Dataset.shuffle` gave over the pixels
themselves), batches read in parallel, prefetched.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.errors import TLCoreError
from .splits import DEFAULT_SEED

CHUNK_BYTES = 32 * 2 ** 20  # rows decoded (and held) at once while a cache file is written
# Batches read ahead of training, and read at once: fixed, so that memory follows the batch and
# not the length of an epoch (tf.data's AUTOTUNE grows its buffers within a budget of half the
# machine's memory, the longer an epoch the more).
PREFETCH_BATCHES = 2
_HEADER_BYTES = 128  # fixed, so the row count can be rewritten in place at the end
_MAGIC = b"\x93NUMPY\x01\x00"


def _header(shape: tuple, dtype) -> bytes:
    text = (f"{{'descr': {np.lib.format.dtype_to_descr(np.dtype(dtype))!r}, 'fortran_order': False, "
            f"'shape': {tuple(int(s) for s in shape)!r}, }}")
    room = _HEADER_BYTES - len(_MAGIC) - 2
    if len(text) + 1 > room:
        raise ValueError(f"shape too long for a .npy header. Received: shape={shape}")
    text = text.ljust(room - 1) + "\n"
    return _MAGIC + len(text).to_bytes(2, "little") + text.encode("latin1")


class NpyWriter:
    """An uncompressed `.npy` file written rows first, shape last.

    `append` adds rows ([k, *row_shape]; the first block sets `row_shape` and `dtype` when they
    were not given); `close` writes the header for the rows appended (`lead` splits their count
    over several leading axes, e.g. (copies, n)). The file is a valid `.npy` only after `close`.
    """

    def __init__(self, path: str | os.PathLike, row_shape: tuple | None = None, dtype=None):
        self.path = Path(path)
        self.row_shape = None if row_shape is None else tuple(row_shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.rows = 0
        self._file = open(self.path, "wb")
        self._file.write(b"\0" * _HEADER_BYTES)

    def append(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if self.row_shape is None:
            self.row_shape = tuple(block.shape[1:])
        if self.dtype is None:
            self.dtype = block.dtype
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {self.row_shape} expected. Received: {block.shape[1:]}")
        self._file.write(memoryview(block).cast("B"))
        self.rows += len(block)

    def close(self, lead: tuple | None = None) -> int:
        lead = (self.rows,) if lead is None else tuple(int(k) for k in lead)
        if int(np.prod(lead)) != self.rows:
            raise ValueError(f"lead {lead} does not hold the {self.rows} rows written")
        self._file.seek(0)
        self._file.write(_header((*lead, *(self.row_shape or ())), self.dtype or np.dtype(np.uint8)))
        self._file.close()
        return self.rows

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class Rows:
    """Array-like rows read on demand: `len`, `shape`, `dtype`, `nbytes`, `rows[i]`,
    `rows[a:b]`, `rows[[i, j]]`, `rows[i, ...]`, iteration, `np.asarray(rows)`. Subclasses
    give `read(indexes) -> ndarray`."""

    shape: tuple
    dtype: np.dtype
    streamed = False  # True: decoded from the image files at every read

    def read(self, indexes) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.shape[0])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __getitem__(self, key):
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            rows = self[head]
            return rows[rest] if np.ndim(head) == 0 and not isinstance(head, slice) else \
                rows[(slice(None), *rest)]
        n = len(self)
        if isinstance(key, slice):
            return self.read(np.arange(n)[key])
        if np.ndim(key) == 0 and not isinstance(key, (bool, np.bool_)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for {n} rows")
            return self.read([i % n])[0]
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return self.read(idx.astype(np.int64) % max(n, 1))

    def __iter__(self):
        step = max(1, CHUNK_BYTES // max(1, self.nbytes // max(1, len(self))))
        for start in range(0, len(self), step):
            yield from self.read(np.arange(start, min(start + step, len(self))))

    def __array__(self, dtype=None, copy=None):
        out = self.read(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)


class DiskRows(Rows):
    """The rows of an uncompressed `.npy` file, read by position.

    The header comes from `np.load(path, mmap_mode="r")`; rows are read with `os.preadv` into
    new arrays, never through the map, so reading a file once through leaves the process's
    resident memory where it was (the pages stay in the kernel's page cache, shared and
    reclaimable). The file descriptor is held open: the cache may delete the file meanwhile.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        header = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if header.dtype.hasobject or not header.flags.c_contiguous:
            raise ValueError(f"{self.path}: not a plain C-ordered array")
        self.shape, self.dtype, self.offset = tuple(header.shape), header.dtype, int(header.offset)
        del header
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd, self._owner = os.open(self.path, os.O_RDONLY), None

    def _view(self, offset: int, shape: tuple) -> "DiskRows":
        view = object.__new__(DiskRows)
        view.path, view.dtype, view.offset, view.shape = self.path, self.dtype, offset, tuple(shape)
        view.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
        view._fd, view._owner = self._fd, self  # the owner keeps the descriptor open
        return view

    def part(self, k: int) -> "DiskRows":
        """Row `k` of the first axis as rows of its own ([copies, n, ...] -> copy k, [n, ...])."""
        if not 0 <= k < len(self):
            raise IndexError(f"part {k} is out of bounds for {len(self)}")
        return self._view(self.offset + k * self.row_bytes, self.shape[1:])

    def flat(self) -> "DiskRows":
        """The first two axes as one ([copies, n, ...] -> [copies * n, ...])."""
        return self._view(self.offset, (self.shape[0] * self.shape[1], *self.shape[2:]))

    def read(self, indexes) -> np.ndarray:
        idx = np.asarray(indexes, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        if not len(idx) or not self.row_bytes:
            return out
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"row indexes must be from 0 to {len(self) - 1}. Received: {idx.min()}..{idx.max()}")
        flat = memoryview(out.reshape(len(idx), -1).view(np.uint8)).cast("B")
        # one read per run of consecutive rows (a slice is one read; a random batch, one per row)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
            want = int(b - a) * self.row_bytes
            view = flat[int(a) * self.row_bytes:int(b) * self.row_bytes]
            pos = self.offset + int(idx[a]) * self.row_bytes
            got = 0
            while got < want:
                n = os.preadv(self._fd, [view[got:]], pos + got)
                if n <= 0:
                    raise TLCoreError(f"The cache file {self.path} is shorter than its header says; "
                                      "clear the cache (`tlcore cache --clear`) and start again.")
                got += n
        return out

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None and getattr(self, "_owner", None) is None:
            try:
                os.close(fd)
            except OSError:
                pass
            self._fd = None

    def __reduce__(self):
        return (DiskRows, (str(self.path),))


class DecodedRows(Rows):
    """Images decoded from their files each time they are read, several at once (the path of a
    split whose decoded pixels exceed the cache's cap, as Keras' directory loader does)."""

    streamed = True

    def __init__(self, paths: list[str], size: int, resize: str = "stretch", threads: int = 2):
        self.paths, self.image_size, self.resize, self.threads = list(paths), int(size), resize, threads
        self.shape, self.dtype = (len(self.paths), int(size), int(size), 3), np.dtype(np.uint8)
        self._pool = None

    def read(self, indexes) -> np.ndarray:
        from .images import ImageProblem, load_image

        idx = np.asarray(indexes, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), *self.shape[1:]), dtype=np.uint8)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="tlcore-decode")

        def one(k):
            path = self.paths[int(idx[k])]
            try:
                out[k] = load_image(path, self.image_size, self.resize)
            except (ImageProblem, OSError) as exc:
                raise TLCoreError(f"{path} could no longer be read ({exc}); it was readable when the "
                                  "run started. Restore the file or remove it and start again.") from None

        list(self._pool.map(one, range(len(idx))))
        return out

    def __reduce__(self):
        return (DecodedRows, (self.paths, self.image_size, self.resize, self.threads))


class Subset(Rows):
    """Rows `keep` of another `Rows` (or ndarray), read from it on demand: a sample of a split
    that is never gathered into one array."""

    def __init__(self, source, keep):
        self.source, self.keep = source, np.asarray(keep, dtype=np.int64).reshape(-1)
        self.shape, self.dtype = (len(self.keep), *source.shape[1:]), np.dtype(source.dtype)
        self.streamed = bool(getattr(source, "streamed", False))

    def read(self, indexes) -> np.ndarray:
        return read_rows(self.source, self.keep[np.asarray(indexes, dtype=np.int64).reshape(-1)])


def chunks(source, max_bytes: int | None = None):
    """`source` (an ndarray or `Rows`) in consecutive blocks of rows of at most `max_bytes`
    (default CHUNK_BYTES; at least one row each): a pass over a split that holds one block."""
    n = len(source)
    row = max(1, int(np.prod(source.shape[1:], dtype=np.int64)) * np.dtype(source.dtype).itemsize)
    step = max(1, int(CHUNK_BYTES if max_bytes is None else max_bytes) // row)
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield source[start:stop] if isinstance(source, np.ndarray) else read_rows(source, np.arange(start, stop))


def read_rows(source, indexes) -> np.ndarray:
    """Rows `indexes` of an ndarray or a `Rows`."""
    if isinstance(source, Rows):
        return source.read(indexes)
    return np.take(source, np.asarray(indexes, dtype=np.int64), axis=0)


def index_dataset(source, targets: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = DEFAULT_SEED,
                  shard: tuple[int, int] | None = None, copies: int = 1):
    """tf.data of (rows as stored, targets) batches, reading `source` (an ndarray or `Rows`) by index.

    Shuffling permutes the indexes once per epoch (seeded: the order `Dataset.shuffle` with a
    full buffer gives for the same seed), never the rows themselves; batches are read in
    parallel and in order. `shard` (workers, index) is one worker's share of every batch:
    `batch_size` is then the global batch (all workers together), and this worker reads rows
    index, index + workers, ... of each batch of the permutation (every worker draws the same
    permutation from the seed), so the workers' indexes are disjoint, cover the split, and every
    worker has the same number of batches (a collective step waits for all of them). Only a last
    batch with fewer rows than workers lends one of its rows to each worker that has none. With
    `copies` > 1, `source` holds
    `copies` versions of each of its n = len / copies items (copy c of item i at row c * n + i)
    and each epoch reads one version of every item, drawn at random (seeded).
    """
    import tensorflow as tf

    n = len(source) // max(1, copies)
    row_shape = tuple(int(s) for s in source.shape[1:])
    dtype = tf.as_dtype(np.dtype(source.dtype))
    y = tf.constant(targets)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    if copies > 1:  # a sequential map: the draws follow the order, not the threads' timing
        ds = ds.map(lambda i: i + n * tf.random.uniform([], 0, copies, dtype=tf.int64, seed=seed))
    ds = ds.batch(batch_size)
    if shard:
        ds = ds.map(_worker_share(*shard))

    def load(i):
        x = tf.numpy_function(lambda j: read_rows(source, j), [i], dtype, stateful=False)
        x.set_shape([None, *row_shape])
        return x, tf.gather(y, i % n if copies > 1 else i)

    return ds.map(load, num_parallel_calls=_threads(), deterministic=True)


def _worker_share(workers: int, index: int):
    """The function of a batch of indexes giving worker `index`'s rows of it (see index_dataset)."""
    import tensorflow as tf

    workers, index = int(workers), int(index)
    if workers < 1 or not 0 <= index < workers:
        raise ValueError(f"shard must be (workers, index) with 0 <= index < workers. Received: {(workers, index)}")

    def share(batch):
        k = tf.shape(batch, out_type=tf.int64)[0]
        mine = tf.range(index, k, workers, dtype=tf.int64)
        lent = tf.reshape(index % tf.maximum(k, 1), [1])  # a batch shorter than the workers
        return tf.gather(batch, tf.cond(k > index, lambda: mine, lambda: lent))

    return share


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 2
