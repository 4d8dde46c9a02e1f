"""A finished run's dir read back, for the commands that use its model (`src.evaluate`,
`src.predict`): its config and a checkpoint, and the model, data and device rebuilt from them
by the same public steps a run builds with (`src.data.build`, the model source)."""

import contextlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from src import run_lock
from src.adapters.step import adapt
from src.adapters.targets import adapter_spec
from src.adapters.wrap import merged
from src.checks import resolve_device
from src.data.build import build_data
from src.data.loading import Data
from src.errors import GroupwiseError
from src.migration import as_today, dataset_as_today
from src.models import export
from src.models.source import ModelSource, model_source
from src.training import precision
from src.training.checkpoints import (
    CONFIG,
    PROGRESS,
    load_checkpoint_or_explain,
    served_weights,
)
from src.training.threads import set_threads

FINISHED_MARK = "metrics.json"  # written by the run's last step


@dataclass
class TrainedRun:
    run_dir: Path
    cfg: DictConfig  # the config it was trained with, resolved (the checkpoint's copy)
    checkpoint: str  # its name: checkpoints/<checkpoint>.pt
    weights: dict[str, torch.Tensor]  # the EMA's when the run's monitor followed val_ema/*
    epoch: int  # epochs trained when the checkpoint was written
    global_step: int

    def device(self, override: str | None) -> torch.device:
        """`device=` when given, else the run's own trainer.device."""
        if override is not None:
            return resolve_device(override, key="device")
        try:
            return resolve_device(self.cfg.trainer.device)
        except GroupwiseError:  # e.g. trained on a GPU, evaluated on a laptop
            device = resolve_device("auto")
            print(f"the run's trainer.device={self.cfg.trainer.device} is not here: using {device}")
            return device

    def device_line(self, device: torch.device, threads: int | None) -> str:
        """torch's CPU threads set as a run sets them (`threads=` when given, else the run's
        trainer.threads, else OMP_NUM_THREADS or the CPUs this process may use), and the line
        that says so beside the device, as a run's log says it."""
        if threads is not None:
            chosen = set_threads(threads, key="threads")
        else:
            chosen = set_threads(self.cfg.trainer.get("threads"), key="the run's trainer.threads")
        return f"device: {device}, {chosen}"

    @cached_property
    def source(self) -> ModelSource:
        """The run's model source, from its model config (made once: it may read files)."""
        return model_source(as_today(OmegaConf.to_container(self.cfg.model, resolve=True), None))

    def data(self, batch_size: int | None = None) -> Data:
        """The run's data, split as it was trained (the split follows from its seed)."""
        if batch_size is not None:
            self.cfg.dataset.batch_size = batch_size
        return build_data(dataset_as_today(self.cfg.dataset), self.cfg.seed, self.source)

    def model(self, in_channels: int, num_classes: int, device: torch.device) -> torch.nn.Module:
        """The run's model with the checkpoint's weights, in eval mode on `device`; a run's
        adapter merged into it, as its export holds it."""
        model = self.source.build(in_channels, num_classes)
        adapter = OmegaConf.to_container(self.cfg.get("adapter") or {}, resolve=True)
        spec = adapter_spec({**adapter, "path": None}, model, self.source.roles(model))
        model = adapt(model, spec, self.source.roles(model))[0]
        model.load_state_dict(self.weights)
        return (merged(model) if spec else model).to(device).eval()

    def autocast(self, device: torch.device):
        """The precision the run evaluated at during training."""
        return precision.autocast(self.cfg.trainer.precision, device)

    def export_description(self) -> dict:
        """export/model.json: the classes and input transform, without reading the dataset."""
        path = self.run_dir / export.DIRECTORY / export.DESCRIPTION_FILE
        if not path.is_file():
            raise GroupwiseError(
                f"run_dir={self.run_dir}: no {export.DIRECTORY}/{export.DESCRIPTION_FILE} (a run "
                "trained before groupwise exported its models); train it anew to predict with it"
            )
        return export.read_description(path.parent)


def in_use(run_dir: str, writes: bool):
    """The run dir's lock (src/run_lock.py) while a command reads it, exclusive while it
    `writes` into it: refused while a run trains there. No dir: `open_run` says so."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        return contextlib.nullcontext()
    return run_lock.held(
        path,
        f"run_dir={run_dir}: {{holder}} is writing it (a run still training, or another "
        "command); wait until it has ended, then run this again",
        exclusive=writes,
    )


def open_run(run_dir: str, checkpoint: str) -> TrainedRun:
    """The run in `run_dir` and its checkpoint `checkpoint`, refused with one clear line when
    the dir is not a finished run or holds no such checkpoint."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise GroupwiseError(
            f"run_dir={run_dir}: no such directory; pass the dir of a finished run "
            "(e.g. outputs/runs/<date>_<time>)"
        )
    if (path / "multirun.yaml").exists():
        raise GroupwiseError(
            f"run_dir={run_dir}: the root of a sweep; pass one of its jobs' dirs (summary.csv's "
            "run_dir column), or evaluate them all with sweep_dir="
        )
    if not (path / FINISHED_MARK).exists():
        raise GroupwiseError(
            f"run_dir={run_dir}: not a finished run (no {FINISHED_MARK}: a dry run, a run still "
            "training or killed, or another dir); finish it with resume=true, or pass another"
        )
    file = path / "checkpoints" / f"{checkpoint}.pt"
    if not file.is_file():
        kept = sorted(p.stem for p in (path / "checkpoints").glob("*.pt"))
        raise GroupwiseError(
            f"checkpoint={checkpoint}: {run_dir} has no checkpoints/{checkpoint}.pt; it has "
            f"{', '.join(kept) or 'none'} (best exists when trainer.monitor was set)"
        )
    state = load_checkpoint_or_explain(
        file, f"checkpoint={checkpoint}", "was it copied or edited? try checkpoint=last"
    )
    return TrainedRun(
        run_dir=path,
        cfg=OmegaConf.create(state[CONFIG]),
        checkpoint=checkpoint,
        weights=served_weights(state)[0],
        epoch=state[PROGRESS]["epoch"],
        global_step=state[PROGRESS]["global_step"],
    )
