"""One run, in named steps: data -> model -> pretrained weights -> param groups ->
optimizer and schedule -> training -> outputs. Each step is a plain call with explicit inputs."""

import json
import logging
import random
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src import param_groups, pretrained
from src.checkpoints import load_checkpoint
from src.errors import GroupwiseError
from src.logger import RunLogger
from src.trainer import Trainer

log = logging.getLogger(__name__)

# A resumed run must train the same network with the same groups as the one it continues.
RESUME_MUST_MATCH = ("model", "dataset", "param_groups")


class Runner:
    def __init__(self, cfg: DictConfig, run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"

    def run(self) -> dict | None:
        """Set up, then explain (dry run) or train; returns the final metrics."""
        self._check_run_dir()
        self.setup()
        if self.cfg.dry_run:
            log.info("dry run: nothing trained")
            return None
        return self.train()

    def setup(self) -> None:
        # Markdown shown in TensorBoard's text tab, gathered by the steps that make it.
        self.texts = {"config": f"```yaml\n{OmegaConf.to_yaml(self.cfg)}\n```"}
        _seed_everything(self.cfg.seed)
        self.device = _resolve_device(self.cfg.trainer.device)
        self.data = build(self.cfg, "dataset", seed=self.cfg.seed)
        # Pretrained weights go in before the optimizer exists, and before the model moves
        # to its device, so the checkpoint is read into CPU memory once.
        self.model, self.load_report = self._build_model_with_pretrained()
        self.model.to(self.device)
        self.groups = self._resolve_param_groups()
        self.optimizer = build(
            self.cfg,
            "optimizer",
            params=param_groups.optimizer_groups(self.groups, self.cfg.optimizer.lr),
        )
        self.scheduler = build(
            self.cfg,
            "scheduler",
            optimizer=self.optimizer,
            steps_per_epoch=len(self.data.train_loader),
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

    def _resolve_param_groups(self) -> list[param_groups.ResolvedGroup]:
        specs = param_groups.parse_specs(OmegaConf.to_container(self.cfg.param_groups))
        groups = param_groups.resolve(self.model, specs)
        base_lr = self.cfg.optimizer.lr
        table = param_groups.format_table(groups, base_lr)
        log.info("param groups:\n%s", table)
        self.texts["param_groups"] = f"```\n{table}\n```"
        _write_json(self.run_dir / "param_groups.json", param_groups.explain(groups, base_lr))
        return groups

    def train(self) -> dict:
        config = OmegaConf.to_container(self.cfg, resolve=True)
        logger = RunLogger(self.run_dir)
        try:
            trainer = Trainer(
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                data=self.data,
                device=self.device,
                logger=logger,
                checkpoint_path=self.checkpoint_path,
                max_epochs=self.cfg.trainer.max_epochs,
                log_every_n_steps=self.cfg.trainer.log_every_n_steps,
                config=config,
            )
            if self.cfg.resume:
                trainer.restore(self._resume_state(config))
                log.info("resumed after epoch %d", trainer.progress.epoch)
            else:
                for tag, markdown in self.texts.items():
                    logger.text(tag, markdown)
            progress = trainer.fit()
        finally:
            # The basic launcher runs sweep jobs in one process: every writer must be closed.
            logger.close()
        last = progress.history[-1] if progress.history else {}
        metrics = {k: v for k, v in last.items() if k != "epoch"}
        metrics.update(epochs=progress.epoch, best_val_acc=progress.best_val_acc)
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

    def _resume_state(self, config: dict) -> dict:
        state = load_checkpoint(self.checkpoint_path)
        changed = [k for k in RESUME_MUST_MATCH if state["config"].get(k) != config.get(k)]
        if changed:
            raise GroupwiseError(
                f"resume=true: {', '.join(changed)} differ from the run being resumed "
                f"({self.checkpoint_path}); resume with its config, or start a new run dir"
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


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
