"""Hydra's record of a launch (`.hydra/`: the composed config, Hydra's own, the overrides) and
the console log (`run.log`), written into the run dir only once the run goes ahead.

Hydra writes both as the job starts, before any groupwise code can look at the run dir: a run
refused for bad input would leave a timestamped dir holding only them, and a run refused
because its dir holds a trained run would rewrite that run's record. So conf/config.yaml
turns Hydra's record off (`hydra.output_subdir: null`) and gives `run.log` the handler below,
which holds the log in memory; the runner calls `Record.go_ahead` once every check has passed,
before its first file. A run refused before that writes nothing.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class HeldFileHandler(logging.FileHandler):
    """`run.log`: what is logged before `start` is held, then written with all that follows;
    never started (a refused run), nothing is written and the file is never made."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None):
        super().__init__(filename, mode, encoding, delay=True)
        self.held: list[logging.LogRecord] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is not None:
            self.held.append(record)
            return
        super().emit(record)

    def start(self) -> None:
        held, self.held = self.held or [], None
        for record in held:
            super().emit(record)
        self.flush()


@dataclass(frozen=True)
class Record:
    """What Hydra would have written into `.hydra/` as the job started."""

    task: DictConfig  # the composed config, as Hydra saves it (unresolved)
    hydra: DictConfig  # Hydra's own config, under its `hydra` key
    overrides: list[str]
    resume: bool
    # When this launch started: names a resume's record. Under torchrun only rank 0 writes
    # the record, so its own clock is the one.
    launched: datetime

    def go_ahead(self, run_dir: Path, writes: bool) -> None:
        """The run goes ahead: the process that `writes` the run dir (under torchrun, rank 0:
        all ranks share it) writes the record (a resume's beside the record of how the run
        started) and `run.log` from its first line; any other keeps its log lines out of it."""
        if not writes:
            for handler in _held_handlers():
                logging.getLogger().removeHandler(handler)
                handler.close()
            return
        directory = Path(run_dir) / record_dir(self.resume, self.launched)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in (
            ("config.yaml", self.task),
            ("hydra.yaml", self.hydra),
            ("overrides.yaml", OmegaConf.create(self.overrides)),
        ):
            (directory / name).write_text(OmegaConf.to_yaml(content), encoding="utf-8")
        for handler in _held_handlers():
            handler.start()


def _held_handlers() -> list[HeldFileHandler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, HeldFileHandler)]


def record_dir(resume: bool, launched: datetime) -> str:
    """`.hydra`; a resume's own: `.hydra/resume_<launch time>`, so the first stays as it was."""
    return f".hydra/resume_{launched:%Y-%m-%d_%H-%M-%S}" if resume else ".hydra"
