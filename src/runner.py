"""One run, in named steps: data -> model -> pretrained weights -> param groups ->
optimizer and schedule -> training -> outputs. Each step is a plain call with explicit inputs."""

import importlib
import json
import logging
import math
import random
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.errors import GroupwiseError
from src.optim import explain, param_groups, resolve, specs
from src.pretrained import load as pretrained
from src.tracking.logger import RunLogger
from src.training import distributed
from src.training.checkpoints import load_checkpoint
from src.training.trainer import Trainer, check_settings

log = logging.getLogger(__name__)

# A resumed run must train the same network with the same groups on the same data as the one
# it continues; the optimizer too, as its restored state would silently override a change.
RESUME_MUST_MATCH = ("seed", "model", "dataset", "optimizer", "param_groups", "weight_decay_1d")


class Runner:
    def __init__(self, cfg: DictConfig, run_dir: Path, hparams: dict | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.hparams = hparams or {}  # shown in TensorBoard's HPARAMS tab, e.g. the overrides
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"
        self.resume_state: dict | None = None  # the checkpoint to continue, read by `run`

    def run(self) -> dict | None:
        """Set up, then explain (dry run) or train; returns the final metrics."""
        self._check_run_dir()
        # Refused before setup writes anything into the run being resumed.
        self.resume_state = self._resume_state() if self.cfg.resume else None
        self.setup()
        if self.cfg.dry_run:
            log.info("dry run: nothing trained")
            return None
        return self.train()

    def setup(self) -> None:
        # Markdown shown in TensorBoard's text tab, gathered by the steps that make it.
        self.texts = {"config": f"```yaml\n{OmegaConf.to_yaml(self.cfg)}\n```"}
        check_settings(self.cfg.trainer)
        _seed_everything(self.cfg.seed)
        self.device = distributed.device(_resolve_device(self.cfg.trainer.device))
        self.data = build(self.cfg, "dataset", seed=self.cfg.seed)
        # Under torchrun each rank trains and evaluates on its share (no-ops otherwise).
        self.data.train_loader = distributed.shard(self.data.train_loader, pad=True)
        self.data.val_loader = distributed.shard(self.data.val_loader, pad=False)
        # Pretrained weights go in before the optimizer exists, and before the model moves
        # to its device, so the checkpoint is read into CPU memory once.
        self.model, self.load_report = self._build_model_with_pretrained()
        self.model.to(self.device)
        self.groups = self._resolve_param_groups()
        distributed.check_same_on_every_rank(self.param_groups_info, "param groups")
        self.optimizer = build(
            self.cfg,
            "optimizer",
            params=param_groups.optimizer_groups(
                self.groups,
                self.cfg.optimizer.lr,
                self.cfg.optimizer.get("weight_decay", 0.0),
                self.cfg.weight_decay_1d,
            ),
        )
        self.scheduler = build(
            self.cfg,
            "scheduler",
            optimizer=self.optimizer,
            # Optimizer steps: one per accumulate_grad_batches batches, and one for the rest.
            steps_per_epoch=math.ceil(
                len(self.data.train_loader) / self.cfg.trainer.accumulate_grad_batches
            ),
            max_epochs=self.cfg.trainer.max_epochs,
        )

    def _build_model_with_pretrained(self) -> tuple[torch.nn.Module, pretrained.LoadReport | None]:
        def make_model():
            # The model's input channels and head size come from the data.
            return build(
                self.cfg,
                "model",
                in_channels=self.data.in_channels,
                num_classes=self.data.num_classes,
            )

        options = pretrained.check_options(
            OmegaConf.to_container(self.cfg.pretrained, resolve=True)
        )
        if self.cfg.pretrained.path is None:
            log.info("pretrained: none (training from scratch)")
            return make_model(), None
        # Built on the meta device, the model takes the checkpoint's tensors themselves.
        model, report = pretrained.build_with_pretrained(
            make_model, self.cfg.pretrained.path, **options
        )
        log.info(pretrained.format_report(report))
        self.texts["pretrained"] = f"```\n{pretrained.format_report(report)}\n```"
        _write_json(self.run_dir / "pretrained_report.json", report.to_json())
        return model, report

    def _resolve_param_groups(self) -> list[resolve.ResolvedGroup]:
        group_specs = specs.parse_specs(
            OmegaConf.to_container(self.cfg.param_groups),
            specs.accepted_keys(_optimizer_class(self.cfg.optimizer._target_)),
        )
        resolution = resolve.resolve(self.model, group_specs)
        optimizer = self.cfg.optimizer
        info = explain.explain(
            resolution, optimizer.lr, optimizer.get("weight_decay", 0.0), self.cfg.weight_decay_1d
        )
        table = explain.format_explain(info)
        log.info("param groups:\n%s", table)
        self.texts["param_groups"] = f"```\n{table}\n```"
        _write_json(self.run_dir / "param_groups.json", info)
        self.param_groups_info = info
        return resolution.groups

    def build_trainer(self, logger: RunLogger, config: dict) -> Trainer:
        """The loop over what `setup` built, with the config's trainer options."""
        t = self.cfg.trainer
        return Trainer(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            data=self.data,
            device=self.device,
            logger=logger,
            checkpoint_path=self.checkpoint_path,
            max_epochs=t.max_epochs,
            log_every_n_steps=t.log_every_n_steps,
            config=config,
            precision=t.precision,
            channels_last=t.channels_last,
            compile=t.compile,
            accumulate_grad_batches=t.accumulate_grad_batches,
            grad_clip=t.grad_clip,
            monitor=t.monitor,
            checkpoint_every_n_steps=t.checkpoint_every_n_steps,
        )

    def train(self) -> dict:
        config = OmegaConf.to_container(self.cfg, resolve=True)
        logger = RunLogger(self.run_dir) if distributed.is_main() else distributed.Silent()
        try:
            trainer = self.build_trainer(logger, config)
            if self.resume_state is not None:
                trainer.restore(self.resume_state)
                log.info("resumed after epoch %d", trainer.progress.epoch)
            else:
                for tag, markdown in self.texts.items():
                    logger.text(tag, markdown)
                logger.hparams_start(self.hparams)
            progress = trainer.fit()
            logger.hparams_end(progress.best_val_acc, progress.global_step)
        finally:
            # The basic launcher runs sweep jobs in one process: every writer must be closed.
            logger.close()
        last = progress.history[-1] if progress.history else {}
        metrics = {k: v for k, v in last.items() if k != "epoch"}
        metrics.update(epochs=progress.epoch, best_val_acc=progress.best_val_acc)
        if self.cfg.trainer.monitor is not None:
            metrics["best"] = {
                "metric": self.cfg.trainer.monitor,
                "value": progress.best_score,
                "epoch": progress.best_epoch,
            }
        _write_json(self.run_dir / "metrics.json", metrics)
        return metrics

    def _check_run_dir(self) -> None:
        exists = self.checkpoint_path.exists()
        if self.cfg.resume and not exists:
            raise GroupwiseError(
                f"resume=true: no checkpoint at {self.checkpoint_path}; point hydra.run.dir at the "
                "run to continue, or drop resume=true to start anew"
            )
        if exists and not self.cfg.resume and not self.cfg.dry_run:
            raise GroupwiseError(
                f"hydra.run.dir={self.run_dir} already holds a trained run; pass resume=true to "
                "continue it, or choose another hydra.run.dir (nothing was overwritten)"
            )

    def _resume_state(self) -> dict:
        try:
            state = load_checkpoint(self.checkpoint_path)
        except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
            raise GroupwiseError(
                f"resume=true: {self.checkpoint_path} is not a readable checkpoint "
                f"({type(err).__name__}); start a new run dir (atomic writes make this rare: "
                "was the file copied or edited?)"
            ) from None
        config = OmegaConf.to_container(self.cfg, resolve=True)
        differences = [
            f"{key}: {old!r} -> {new!r}"
            for part in RESUME_MUST_MATCH
            for key, old, new in _differences(state["config"].get(part), config.get(part), part)
        ]
        if differences:
            raise GroupwiseError(
                f"resume=true: the config differs from the run being resumed "
                f"({self.checkpoint_path}) in {'; '.join(differences)}; resume with the values "
                "it was started with, or start a new run in another hydra.run.dir"
            )
        return state


def build(cfg: DictConfig, key: str, **kwargs):
    """Call `cfg[key]`'s `_target_` with its keys plus the run-time arguments given here;
    wrong or invalid keys (TypeError / ValueError from the target) are the user's to fix."""
    try:
        # _convert_: hand plain dicts and lists to the target (param groups hold tensors).
        return instantiate(cfg[key], _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
    if isinstance(cause, GroupwiseError):
        raise cause from None
    if not isinstance(cause, TypeError | ValueError):
        raise cause
    raise GroupwiseError(
        f"{key} ({cfg[key].get('_target_')}): {cause}; check the values under {key}"
    ) from None


def _optimizer_class(target: str) -> type:
    """The optimizer's class, before it is built: it tells which keys a param group may set."""
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, ValueError, AttributeError):
        raise GroupwiseError(
            f"optimizer._target_={target}: no such class; use e.g. torch.optim.AdamW"
        ) from None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GroupwiseError(
            f"trainer.device={name}: not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GroupwiseError(
            f"trainer.device={name}: CUDA is not available on this machine; use trainer.device=cpu or auto"
        )
    return device


class _Absent:
    """The value of a key that one of two configs lacks."""

    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _differences(old, new, key: str) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            difference
            for k in [*old, *(k for k in new if k not in old)]
            for difference in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{key}.{k}")
        ]
    return [] if old == new else [(key, old, new)]


def _write_json(path: Path, data: dict) -> None:
    if not distributed.is_main():  # all ranks share the run dir; rank 0 writes it
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
