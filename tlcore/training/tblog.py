"""A run's TensorBoard logs (`tb/train`, `tb/validation`): the scalars Keras' TensorBoard callback
writes at each epoch (`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`; the validation's under
`tb/validation`, without the `val_` prefix; the step is the 0-based epoch), written with
TensorBoard's own event-file writer in plain Python.

Keras' callback runs TensorFlow summary ops and switches writer resources at every epoch and every
validation pass: about 15 ms an epoch on this machine, as much as a head epoch on cached features.
"""
from __future__ import annotations

import time
from pathlib import Path


class EpochLog:
    """Event files under `folder`, one writer per side, opened at the first epoch written."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.writers: dict = {}

    def write(self, epoch: int, record: dict) -> None:
        """The epoch's scalars from a metrics record ({loss, accuracy, val_loss, val_accuracy, lr})."""
        sides = {"train": {"epoch_loss": record.get("loss"), "epoch_accuracy": record.get("accuracy"),
                           "epoch_learning_rate": record.get("lr")},
                 "validation": {"epoch_loss": record.get("val_loss"), "epoch_accuracy": record.get("val_accuracy")}}
        for side, values in sides.items():
            values = {k: float(v) for k, v in values.items() if v is not None}
            if values:
                self._event(side, epoch, values)

    def _event(self, side: str, step: int, values: dict) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        writer = self.writers.get(side)
        if writer is None:
            writer = self.writers[side] = EventFileWriter(str(self.folder / side), flush_secs=10)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)
                                             for tag, value in values.items()])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
