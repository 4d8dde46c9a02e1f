"""checkpoints/best.pt: the checkpoint of the epoch that scored best on `trainer.monitor`."""

import operator
import os
import shutil
from pathlib import Path

from src.config.schema import MONITORED
from src.training.state import TrainingState

# Strictly better: a tie keeps the earlier epoch.
_BETTER = {"max": operator.gt, "min": operator.lt}


class BestCheckpoint:
    def __init__(self, monitor: str | None, last_path: Path):
        self.monitor = monitor  # a key of MONITORED, or None for no best checkpoint
        self.last_path = last_path
        self.path = last_path.with_name("best.pt")

    def update(self, state: TrainingState, metrics: dict[str, float]) -> bool:
        """Whether the epoch just completed beat every earlier one; if so it becomes the
        best in `state` (saved with it), and `keep` should follow the epoch's checkpoint."""
        if self.monitor is None:
            return False
        score, best = metrics[self.monitor], state.best_score
        if best is not None and not _BETTER[MONITORED[self.monitor]](score, best):
            return False
        state.best_score, state.best_epoch = score, state.epoch
        return True

    def keep(self) -> None:
        """Copy last.pt to best.pt: copied rather than serialised twice, and renamed into
        place so that best.pt is never half written."""
        tmp = self.path.with_name("best.pt.tmp")
        shutil.copyfile(self.last_path, tmp)
        os.replace(tmp, self.path)
