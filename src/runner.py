"""One run, in named steps: check -> data -> model and pretrained weights -> param groups ->
optimizer and schedule -> reports -> training -> export -> metrics.

Each step takes its slice of the config and what earlier steps made, and returns what it
makes; `setup` assigns the results to the attributes declared in `__init__`. Nothing is
written to the run dir until every part is built, so a mistake found while building leaves
the run dir as it was.
"""

import json
import logging
import math
import random
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src import resume
from src.checks import check_run, optimizer_class, resolve_device
from src.config.schema import TrainerConfig
from src.data.loading import Data
from src.errors import GroupwiseError
from src.models import export
from src.optim import explain, param_groups, resolve, specs
from src.pretrained import load as pretrained
from src.pretrained.report import LoadReport
from src.tracking import config_text
from src.tracking.hparams import HParams
from src.tracking.logger import RunLogger
from src.training import distributed
from src.training.checkpoints import MODEL, PROGRESS, load_checkpoint
from src.training.trainer import Trainer

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        hparams: HParams | None = None,
        command: str | None = None,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.hparams = hparams or HParams()  # TensorBoard's HPARAMS row: the swept values
        self.command = command  # the command line that reruns this run, atop the config card
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"
        self.resume_state: dict | None = None  # the checkpoint to continue, read by `run`
        # Made by `setup`, in this order:
        self.options: TrainerConfig | None = None
        self.device: torch.device | None = None
        self.data: Data | None = None
        self.model: torch.nn.Module | None = None
        self.load_report: LoadReport | None = None  # None: trained from scratch
        self.groups_info: dict | None = None  # the param groups explained (param_groups.json)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def run(self) -> dict | None:
        """Check, set up, write the reports, then explain (dry run) or train."""
        check_run(self.cfg)
        resume.check_run_dir(self.run_dir, self.checkpoint_path, self.cfg.resume, self.cfg.dry_run)
        # Refused before anything is written into the run being resumed.
        if self.cfg.resume:
            self.resume_state = resume.resume_state(self.checkpoint_path, self.cfg)
        self.setup()
        self.write_reports()
        if self.cfg.dry_run:
            log.info("dry run: nothing trained")
            return None
        return self.train()

    def setup(self) -> None:
        cfg = self.cfg
        self.options = OmegaConf.to_object(cfg.trainer)
        _seed_everything(cfg.seed)
        self.device = distributed.device(resolve_device(self.options.device))
        self.data = setup_data(cfg, cfg.seed)
        # Pretrained weights go in before the optimizer exists, and before the model moves
        # to its device, so the checkpoint is read into CPU memory once.
        self.model, self.load_report = _setup_model(cfg, self.data)
        self.model.to(self.device)
        groups, self.groups_info = _setup_param_groups(cfg, self.model)
        distributed.check_same_on_every_rank(self.groups_info, "param groups")
        self.optimizer = _setup_optimizer(cfg, groups)
        self.scheduler = build(
            cfg,
            "scheduler",
            optimizer=self.optimizer,
            # Optimizer steps: one per accumulate_grad_batches batches, and one for the rest.
            steps_per_epoch=math.ceil(
                len(self.data.train_loader) / self.options.accumulate_grad_batches
            ),
            max_epochs=self.options.max_epochs,
        )

    def write_reports(self) -> None:
        """The param-group and pretrained reports, for people (console) and scripts (JSON)."""
        log.info("param groups:\n%s", explain.format_explain(self.groups_info))
        _write_json(self.run_dir / "param_groups.json", self.groups_info)
        if self.load_report is None:
            log.info("pretrained: none (training from scratch)")
            return
        log.info(pretrained.format_report(self.load_report))
        _write_json(self.run_dir / "pretrained_report.json", self.load_report.to_json())

    def texts(self) -> dict[str, str]:
        """Markdown for TensorBoard's text tab: the resolved config and the two reports."""
        texts = {
            "config": config_text.card(self.cfg, self.command),
            "param_groups": f"```\n{explain.format_explain(self.groups_info)}\n```",
        }
        if self.load_report is not None:
            texts["pretrained"] = f"```\n{pretrained.format_report(self.load_report)}\n```"
        return texts

    def build_trainer(self, logger: RunLogger, config: dict) -> Trainer:
        """The loop over what `setup` built, with the config's trainer options."""
        return Trainer(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            data=self.data,
            device=self.device,
            logger=logger,
            checkpoint_path=self.checkpoint_path,
            config=config,
            options=self.options,
        )

    def train(self) -> dict:
        config = OmegaConf.to_container(self.cfg, resolve=True)
        logger = RunLogger(self.run_dir) if distributed.is_main() else distributed.Silent()
        try:
            trainer = self.build_trainer(logger, config)
            if self.resume_state is not None:
                trainer.restore(self.resume_state)
                log.info("resumed after epoch %d", trainer.state.epoch)
            else:
                for tag, markdown in self.texts().items():
                    logger.text(tag, markdown)
                logger.hparams_start(self.hparams)
            state = trainer.fit()
            logger.hparams_end(state.best_val_acc, state.global_step)
        finally:
            # The basic launcher runs sweep jobs in one process: every writer must be closed.
            logger.close()
        self.export()
        metrics = _final_metrics(state, self.options.monitor)
        _write_json(self.run_dir / "metrics.json", metrics)
        return metrics

    def export(self) -> None:
        """export/: the weights of checkpoints/best.pt (by trainer.monitor; last.pt without
        one, or when a resumed run's dir lacks it) under the model's own names, and what
        rebuilding and feeding the model takes; model.json says which checkpoint it was."""
        if not distributed.is_main():
            return
        best = self.checkpoint_path.with_name("best.pt")
        name = "best" if self.options.monitor is not None and best.exists() else "last"
        checkpoint = load_checkpoint(self.checkpoint_path.with_name(f"{name}.pt"))
        architecture = export.architecture(
            OmegaConf.to_container(self.cfg.model, resolve=True),
            self.data.in_channels,
            self.data.num_classes,
        )
        export.write_export(
            self.run_dir / export.DIRECTORY,
            checkpoint[MODEL],
            architecture,
            self.data.class_names,
            self.data.input,
            origin={"checkpoint": f"checkpoints/{name}.pt", "epoch": checkpoint[PROGRESS]["epoch"]},
            transformers_config=self.model.config
            if architecture["source"] == "transformers"
            else None,
        )


def setup_data(cfg: DictConfig, seed: int) -> Data:
    data = build(cfg, "dataset", seed=seed)
    # Under torchrun each rank trains and evaluates on its share (no-ops otherwise).
    data.train_loader = distributed.shard(data.train_loader, pad=True)
    data.val_loader = distributed.shard(data.val_loader, pad=False)
    return data


def _setup_model(cfg: DictConfig, data: Data) -> tuple[torch.nn.Module, LoadReport | None]:
    def make_model():
        # The model's input channels and head size come from the data.
        return build(cfg, "model", in_channels=data.in_channels, num_classes=data.num_classes)

    if cfg.pretrained.path is None:
        return make_model(), None
    options = pretrained.check_options(OmegaConf.to_container(cfg.pretrained, resolve=True))
    # Built on the meta device, the model takes the checkpoint's tensors themselves.
    return pretrained.build_with_pretrained(
        make_model, cfg.pretrained.path, exclude_origin=_exclude_origin(), **options
    )


def _exclude_origin() -> str:
    """Where `pretrained.exclude` came from when the user did not type it: an exclusion set by
    a config file (the shipped default's new head) is easy to miss in the report."""
    if not HydraConfig.initialized():  # composed by a script, not run from the command line
        return ""
    hydra = HydraConfig.get()
    if any(o.lstrip("+~").startswith("pretrained.exclude") for o in hydra.overrides.task):
        return ""
    choice = hydra.runtime.choices.get("pretrained")
    return f"set by the config files (pretrained={choice}), not the command line"


def _setup_param_groups(cfg: DictConfig, model: torch.nn.Module):
    """The resolved groups, and their explanation for the reports."""
    group_specs = specs.parse_specs(
        OmegaConf.to_container(cfg.param_groups),
        specs.accepted_keys(optimizer_class(cfg.optimizer._target_)),
    )
    resolution = resolve.resolve(model, group_specs)
    optimizer = cfg.optimizer
    info = explain.explain(
        resolution, optimizer.lr, optimizer.get("weight_decay", 0.0), cfg.weight_decay_1d
    )
    return resolution.groups, info


def _setup_optimizer(cfg: DictConfig, groups: list[resolve.ResolvedGroup]):
    optimizer = cfg.optimizer
    return build(
        cfg,
        "optimizer",
        params=param_groups.optimizer_groups(
            groups, optimizer.lr, optimizer.get("weight_decay", 0.0), cfg.weight_decay_1d
        ),
    )


def _final_metrics(state, monitor: str | None) -> dict:
    last = state.history[-1] if state.history else {}
    metrics = {k: v for k, v in last.items() if k != "epoch"}
    metrics.update(epochs=state.epoch, best_val_acc=state.best_val_acc)
    if monitor is not None:
        metrics["best"] = {"metric": monitor, "value": state.best_score, "epoch": state.best_epoch}
    return metrics


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def _write_json(path: Path, data: dict) -> None:
    if not distributed.is_main():  # all ranks share the run dir; rank 0 writes it
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
