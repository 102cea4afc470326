"""Decoded images on disk: .npy files written chunk by chunk, read by position, batches by index."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlcore.data import mapped
from tlcore.data import pipeline as data


def _rows(tmp_path, n=10, shape=(2, 3, 3), chunks=(4, 3, 3)) -> tuple[mapped.DiskRows, np.ndarray]:
    full = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)
    writer = mapped.NpyWriter(tmp_path / "rows.npy", shape)
    start = 0
    for k in chunks:
        writer.append(full[start:start + k])
        start += k
    assert writer.close() == n
    return mapped.DiskRows(tmp_path / "rows.npy"), full


def test_written_in_chunks_is_a_plain_npy(tmp_path):
    rows, full = _rows(tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "rows.npy"), full)
    np.testing.assert_array_equal(np.load(tmp_path / "rows.npy", mmap_mode="r"), full)


def test_rows_read_like_an_array(tmp_path):
    rows, full = _rows(tmp_path)
    assert len(rows) == 10 and rows.shape == full.shape and rows.dtype == np.uint8
    assert rows.nbytes == full.nbytes
    np.testing.assert_array_equal(rows[3], full[3])
    np.testing.assert_array_equal(rows[-1], full[-1])
    np.testing.assert_array_equal(rows[2:7], full[2:7])
    np.testing.assert_array_equal(rows[::3], full[::3])
    np.testing.assert_array_equal(rows[[9, 0, 4, 5]], full[[9, 0, 4, 5]])
    mask = np.arange(10) % 2 == 0
    np.testing.assert_array_equal(rows[mask], full[mask])
    np.testing.assert_array_equal(rows[1, ..., 2], full[1, ..., 2])
    np.testing.assert_array_equal(rows[1:4, 0], full[1:4, 0])
    np.testing.assert_array_equal(np.stack(list(rows)), full)
    np.testing.assert_array_equal(rows.astype(np.float32), full.astype(np.float32))
    with pytest.raises(IndexError):
        rows[10]


def test_fewer_rows_than_planned_rewrite_the_header(tmp_path):
    writer = mapped.NpyWriter(tmp_path / "a.npy", (4,), np.float32)
    writer.append(np.ones((3, 4), np.float32))
    writer.close()
    assert np.load(tmp_path / "a.npy").shape == (3, 4)
    empty = mapped.NpyWriter(tmp_path / "b.npy", (4,), np.float32)
    empty.close()
    assert np.load(tmp_path / "b.npy").shape == (0, 4) and len(mapped.DiskRows(tmp_path / "b.npy")) == 0


def test_reading_every_row_maps_nothing_into_the_process(tmp_path):
    rows, full = _rows(tmp_path, n=64, shape=(64, 64, 3), chunks=(64,))
    for start in range(0, 64, 8):
        rows.read(np.arange(start, start + 8))
    maps = Path("/proc/self/maps").read_text()
    assert str(rows.path) not in maps  # positional reads: the file never becomes resident memory


def test_index_pipeline_keeps_the_order_of_a_full_shuffle(tmp_path):
    """Same seed, same order as shuffling the pixels themselves with a full buffer (before)."""
    import tensorflow as tf

    rows, full = _rows(tmp_path, n=23, shape=(1,), chunks=(23,))
    labels = np.arange(23)
    ds = mapped.index_dataset(rows, labels, 5, shuffle=True, seed=7)
    old = tf.data.Dataset.from_tensor_slices((full, labels)).shuffle(23, seed=7, reshuffle_each_iteration=True).batch(5)
    for _ in range(2):  # two epochs: reshuffled alike
        got = [(x, y) for x, y in ds.as_numpy_iterator()]
        want = [(x, y) for x, y in old.as_numpy_iterator()]
        assert [len(y) for _, y in got] == [5, 5, 5, 5, 3]
        for (gx, gy), (wx, wy) in zip(got, want):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)
    a = [y.tolist() for _, y in ds.as_numpy_iterator()]
    b = [y.tolist() for _, y in ds.as_numpy_iterator()]
    assert a != b and sorted(sum(a, [])) == list(range(23))


class _Recording(mapped.DiskRows):
    """DiskRows that remember every index they were asked for."""

    def __init__(self, path):
        super().__init__(path)
        self.asked = []

    def read(self, indexes):
        self.asked.extend(int(i) for i in np.asarray(indexes).reshape(-1))
        return super().read(indexes)


@pytest.mark.parametrize("n,batch,workers", [(10, 4, 2), (23, 6, 3), (19, 8, 2), (12, 4, 4)])
def test_index_pipeline_shards_by_index(tmp_path, n, batch, workers):
    """Each worker reads only its rows: disjoint, together the split, the same number of batches,
    each batch its share of the global one (at most one row apart between workers)."""
    _rows(tmp_path, n=n, shape=(1,), chunks=(n,))
    read, batches = [], []
    for worker in range(workers):
        rows = _Recording(tmp_path / "rows.npy")
        ds = mapped.index_dataset(rows, np.arange(n), batch, shuffle=True, seed=3, shard=(workers, worker))
        got = list(ds.as_numpy_iterator())
        for x, y in got:
            np.testing.assert_array_equal(x[:, 0], np.load(tmp_path / "rows.npy")[y][:, 0])
        read.append(rows.asked)
        batches.append([len(y) for _, y in got])
    flat = sum(read, [])
    assert sorted(flat) == list(range(n))  # disjoint and covering
    assert len({len(b) for b in batches}) == 1  # a collective step waits for every worker
    for step in zip(*batches):
        assert max(step) - min(step) <= 1 and sum(step) <= batch


def test_a_last_batch_shorter_than_the_workers_lends_its_rows(tmp_path):
    _rows(tmp_path, n=9, shape=(1,), chunks=(9,))
    sizes = []
    for worker in range(4):
        ds = mapped.index_dataset(mapped.DiskRows(tmp_path / "rows.npy"), np.arange(9), 4, shard=(4, worker))
        sizes.append([len(y) for _, y in ds.as_numpy_iterator()])
    assert sizes == [[1, 1, 1]] * 4  # 9 = 4 + 4 + 1: the last row is lent to all; no worker has an empty batch
    with pytest.raises(ValueError, match="shard"):
        mapped.index_dataset(mapped.DiskRows(tmp_path / "rows.npy"), np.arange(9), 4, shard=(2, 2))


def test_decoding_holds_a_chunk_and_gives_the_same_rows(tlhome, make_dataset, monkeypatch):
    paths = sorted(str(p) for p in make_dataset("flat", n=5).rglob("*.png"))
    whole, ok, _ = data.decode_images(paths, 8, cache=False)
    monkeypatch.setattr(data, "CHUNK_BYTES", 8 * 8 * 3 * 3)  # three images per chunk
    seen = []
    real = mapped.NpyWriter.append

    def spy(self, block):
        seen.append(len(block))
        real(self, block)

    monkeypatch.setattr(mapped.NpyWriter, "append", spy)
    rows, ok2, _ = data.decode_images(paths, 8)
    assert isinstance(rows, mapped.DiskRows) and not rows.streamed
    assert seen == [3, 3, 3, 1] and ok2 == ok
    np.testing.assert_array_equal(np.asarray(rows), whole)


def test_a_split_larger_than_the_cache_is_decoded_at_every_read(tlhome, make_dataset, monkeypatch):
    root = make_dataset("flat", n=4)
    paths = sorted(str(p) for p in root.rglob("*.png"))
    bad = root / "red" / "broken.png"
    bad.write_text("no")
    paths.append(str(bad))
    whole, _, _ = data.decode_images(paths, 8, cache=False)
    monkeypatch.setenv("TLCORE_CACHE_MAX", str(8 * 8 * 3 * 4))  # room for 4 of the 9
    rows, ok, problems = data.decode_images(paths, 8)
    assert rows.streamed and len(rows) == 8 and ok == list(range(8))
    assert [p["file"] for p in problems] == [str(bad)]
    assert not list((tlhome / "cache").rglob("*.npy"))
    np.testing.assert_array_equal(rows[[7, 0, 3]], whole[[7, 0, 3]])

    from tlcore.training.train import streaming_warning

    text = streaming_warning({"train": rows, "validation": whole})
    assert "train images" in text and "TLCORE_CACHE_MAX" in text and "validation" not in text
    assert streaming_warning({"train": whole}) is None


@pytest.mark.slow
def test_a_training_over_the_cache_cap_streams_says_so_and_scores_every_split(tlhome, make_dataset, monkeypatch):
    from tlcore.recipe.config import TrainConfig
    from tlcore.training.train import train

    root = make_dataset("split", classes=("red", "green"), counts={"train": 6, "validation": 3, "test": 3}, size=32)
    monkeypatch.setenv("TLCORE_CACHE_MAX", "1K")  # smaller than any split's decoded pixels
    reads = []
    real = mapped.DecodedRows.read
    monkeypatch.setattr(mapped.DecodedRows, "read", lambda self, idx: reads.append(len(self)) or real(self, idx))
    cfg = TrainConfig(data=str(root), backbone="ResNet50", weights="none", input_size=32, cut="conv2_block3_out",
                      head_epochs=2, fine_tune_epochs=0, augment="none", early_stopping=0, batch_size=4, lr=0.01,
                      seed=1, feature_cache="off")
    result = train(cfg, runs_dir=str(tlhome / "runs"))
    assert result["state"] == "completed" and result["test_accuracy"] is not None
    assert any("exceed the cache's cap" in w and "train and validation" in w for w in result["warnings"])
    assert {12, 6} <= set(reads)  # train and validation (and test, 6 too) read through the decoder
    assert reads.count(12) >= 2 * 3  # 3 train batches in each of 2 epochs: decoded every epoch
    assert not list((tlhome / "cache").rglob("*.npy"))  # nothing stored over the cap


def test_a_subset_and_chunks_read_only_what_they_are_asked(tmp_path, monkeypatch):
    rows, full = _rows(tmp_path, n=10, shape=(2, 3, 3), chunks=(10,))
    sub = mapped.Subset(rows, [7, 2, 5])
    assert sub.shape == (3, 2, 3, 3) and sub.dtype == full.dtype
    np.testing.assert_array_equal(sub[1:], full[[2, 5]])
    asked = []
    real = mapped.DiskRows.read
    monkeypatch.setattr(mapped.DiskRows, "read", lambda self, i: asked.append(len(i)) or real(self, i))
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 18 * 4)  # four rows of 18 bytes
    np.testing.assert_array_equal(np.concatenate(list(mapped.chunks(rows))), full)
    assert asked == [4, 4, 2]
    assert [len(c) for c in mapped.chunks(full, 18 * 3)] == [3, 3, 3, 1]  # an array: views of it
