"""A run's TensorBoard logs: the epoch scalars TensorBoard reads, as Keras' callback laid them out."""
from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tlcore.training.tblog import EpochLog


def _scalars(folder):
    ea = EventAccumulator(str(folder))
    ea.Reload()
    return {tag: [(e.step, round(e.value, 6)) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


def test_epoch_scalars_land_in_train_and_validation_as_tensorboard_reads_them(tmp_path):
    log = EpochLog(tmp_path / "tb")
    log.write(0, {"loss": 1.5, "accuracy": 0.25, "val_loss": 1.75, "val_accuracy": 0.5, "lr": 0.001})
    log.write(1, {"loss": 1.0, "accuracy": 0.5, "val_loss": None, "val_accuracy": None, "lr": 0.001})
    log.close()
    train = _scalars(tmp_path / "tb" / "train")
    assert train == {"epoch_loss": [(0, 1.5), (1, 1.0)], "epoch_accuracy": [(0, 0.25), (1, 0.5)],
                     "epoch_learning_rate": [(0, 0.001), (1, 0.001)]}
    # an epoch without validation writes nothing there
    assert _scalars(tmp_path / "tb" / "validation") == {"epoch_loss": [(0, 1.75)], "epoch_accuracy": [(0, 0.5)]}


def test_a_second_stage_continues_the_steps_in_new_files(tmp_path):
    for first in (0, 2):
        log = EpochLog(tmp_path / "tb")
        for epoch in (first, first + 1):
            log.write(epoch, {"loss": float(epoch), "accuracy": 0.5, "lr": 0.01})
        log.close()
    assert [s for s, _ in _scalars(tmp_path / "tb" / "train")["epoch_loss"]] == [0, 1, 2, 3]
    assert not (tmp_path / "tb" / "validation").exists()
