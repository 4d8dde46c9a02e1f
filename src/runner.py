"""One run, in named steps: check -> data -> model and pretrained weights -> param groups ->
optimizer and schedule -> reports -> training -> export -> metrics.

Each step takes its slice of the config and what earlier steps made, and returns what it
makes; `setup` assigns the results to the attributes declared in `__init__`. Nothing is
written to the run dir until every part is built, so a mistake found while building leaves
the run dir as it was.
"""

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from src import resume, run_lock, stopping
from src.adapters.step import adapt, footprint
from src.checks import CheckedRun, check_run
from src.config.arguments import build
from src.config.launch_record import Record
from src.config.schema import TrainerConfig
from src.config.study import JobTrial
from src.data import mixing
from src.data.build import build_data
from src.data.loading import Data
from src.data.mixing import BatchMixing
from src.models.input_size import check_input_size
from src.models.source import ModelSource
from src.optim import explain
from src.optim.built import build_param_groups
from src.pretrained import load as pretrained
from src.pretrained.report import LoadReport
from src.tracking import config_text, follow_up
from src.tracking.hparams import HParams
from src.tracking.logger import RunLogger
from src.training import distributed, progress, threads
from src.training.run_export import finish_run, write_json
from src.training.trainer import Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """What the entry point read of how the run was launched (Hydra's state), not a global."""

    hparams: HParams = field(default_factory=HParams)  # TensorBoard's HPARAMS row
    command: str | None = None  # the command line that reruns this run, atop the config card
    exclude_origin: str = ""  # where pretrained.exclude came from, when not the command line
    parallel_sweep: bool = False  # a sweep job beside others: no progress bar
    # Hydra's record (.hydra/) and run.log, written once the run goes ahead (None: no Hydra)
    record: Record | None = None
    trial: JobTrial | None = None  # a pruning sweep's job: its trial, told every epoch


class Runner:
    def __init__(self, cfg: DictConfig, run_dir: Path, launch: Launch | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.launch = launch or Launch()
        self.checkpoint_path = self.run_dir / "checkpoints" / "last.pt"
        self.resume_state: dict | None = None  # the checkpoint to continue, read by `run`
        self.checked: CheckedRun | None = None  # the check pass's findings: `check`
        # Made by `setup`, in this order:
        self.options: TrainerConfig | None = None
        self.device: torch.device | None = None
        self.data: Data | None = None
        self.mixing: BatchMixing | None = None  # Mixup/CutMix of training batches: None, off
        self.model: torch.nn.Module | None = None
        self.load_report: LoadReport | None = None  # None: trained from scratch
        self.groups_info: dict | None = None  # the param groups explained (param_groups.json)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def check(self) -> CheckedRun:
        """Every problem of the config at once; once per run."""
        if self.checked is None:
            self.checked = check_run(self.cfg)
        return self.checked

    def run(self) -> dict | None:
        """Check, set up, write the reports, then explain (dry run) or train, holding the run
        dir's lock throughout (src/run_lock.py; rank 0 for all ranks, who share the dir).
        Nothing is written before every check has passed; into a trained run, only by a resume."""
        if not distributed.is_main():
            return self._run()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock.held(self.run_dir, resume.busy(self.run_dir, self.cfg.resume)):
            return self._run()

    def _run(self) -> dict | None:
        trained = resume.check_run_dir(
            self.run_dir, self.checkpoint_path, self.cfg.resume, self.cfg.dry_run
        )
        # A resume trains on with the config the run started with: what differs from it is the
        # one thing to fix (another model's parameters would not match the groups either), so
        # it is told before the config's own checks.
        if self.cfg.resume:
            self.resume_state = resume.resume_state(self.checkpoint_path, self.cfg)
        self.check()
        self.setup()
        if self.cfg.dry_run and trained:
            self.show_reports()
            log.info(
                "dry run: nothing trained, and nothing written into %s: it holds a trained "
                "run, which only a resume (without dry_run) adds to",
                self.run_dir,
            )
            return None
        if self.launch.record is not None:
            self.launch.record.go_ahead(self.run_dir, writes=distributed.is_main())
        log.info(follow_up.starting(self.run_dir))
        self.write_reports()
        if self.cfg.dry_run:
            log.info("dry run: nothing trained")
            return None
        return self.train()

    def setup(self) -> None:
        cfg, checked = self.cfg, self.check()
        self.options = OmegaConf.to_object(cfg.trainer)
        _seed_everything(cfg.seed)
        self.device = distributed.device(checked.device)
        log.info("device: %s, %s", self.device, threads.set_threads(self.options.threads))
        source = checked.source
        self.data = distributed.rank_share(build_data(cfg.dataset, cfg.seed, source))
        self.mixing = mixing.batch_mixing(self.data.num_classes, cfg.dataset)
        # Pretrained weights go in before the optimizer exists, and before the model moves
        # to its device, so the checkpoint is read into CPU memory once.
        self.model, self.load_report = setup_model(
            source,
            self.data,
            cfg.pretrained.path,
            checked.pretrained_options,
            self.launch.exclude_origin,
        )
        # Adapters wrap the base weights as loaded; the groups see what trains, by user names.
        self.model, trained, roles = adapt(self.model, checked.adapter, source.roles(self.model))
        self.model.to(self.device)
        # A size the model cannot take: refused now, not as a traceback once training starts.
        check_input_size(
            self.model,
            self.data.input,
            self.device,
            source,
            lambda: source.build(self.data.in_channels, self.data.num_classes),
        )
        groups, self.groups_info = build_param_groups(
            trained,
            checked.group_specs,
            roles,
            cfg.optimizer.lr,
            cfg.optimizer.get("weight_decay", 0.0),
            cfg.weight_decay_1d,
        )
        distributed.check_same_on_every_rank(self.groups_info, "param groups")
        self.optimizer = build(
            cfg.optimizer, "optimizer", target=checked.optimizer_class, params=groups
        )
        self.scheduler = build(
            cfg.scheduler,
            "scheduler",
            optimizer=self.optimizer,
            # Optimizer steps: one per accumulate_grad_batches batches, and one for the rest.
            steps_per_epoch=math.ceil(
                len(self.data.train_loader) / self.options.accumulate_grad_batches
            ),
            max_epochs=self.options.max_epochs,
        )
        if checked.adapter is not None:  # explained with the groups, in every report of them
            self.groups_info["adapter"] = footprint(self.model, checked.adapter, self.optimizer)

    def show_reports(self) -> None:
        """The param-group and pretrained reports, on the console."""
        log.info("param groups:\n%s", explain.format_explain(self.groups_info))
        if self.load_report is None:
            log.info("pretrained: none (training from scratch)")
        else:
            log.info(pretrained.format_report(self.load_report))

    def write_reports(self) -> None:
        """The reports, for people (console) and scripts (JSON)."""
        self.show_reports()
        write_json(self.run_dir / "param_groups.json", self.groups_info)
        if self.load_report is not None:
            write_json(self.run_dir / "pretrained_report.json", self.load_report.to_json())

    def texts(self) -> dict[str, str]:
        """Markdown for TensorBoard's text tab: the resolved config and the two reports."""
        texts = {
            "config": config_text.card(self.cfg, self.launch.command),
            "param_groups": f"```\n{explain.format_explain(self.groups_info)}\n```",
        }
        if self.load_report is not None:
            texts["pretrained"] = f"```\n{pretrained.format_report(self.load_report)}\n```"
        return texts

    def _continued(self, trainer: Trainer) -> tuple:
        """Where a stopped run's training can be continued from, for its one line."""
        saved = trainer.checkpointer.saved
        return saved, self.checkpoint_path, self.run_dir, self.launch.command

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
            mixing=self.mixing,
            progress_bars=progress.wanted(self.launch.parallel_sweep),
            stop_after=self.launch.trial.report if self.launch.trial else None,
        )

    def train(self) -> dict:
        config = OmegaConf.to_container(self.cfg, resolve=True)
        logger = RunLogger(self.run_dir) if distributed.is_main() else distributed.Silent()
        trainer = self.build_trainer(logger, config)
        state = None  # set once training has finished
        try:
            try:
                if self.resume_state is not None:
                    trainer.restore(self.resume_state)
                    log.info("resumed after epoch %d", trainer.state.epoch)
                else:
                    for tag, markdown in self.texts().items():
                        logger.text(tag, markdown)
                    logger.hparams_start(self.launch.hparams)
                state = trainer.fit()
                pruned_at = self.launch.trial.pruned_at if self.launch.trial else None
                logger.hparams_end(state.best_val_acc, state.global_step, pruned_at)
            finally:
                # The basic launcher runs sweep jobs in one process: every writer must be closed.
                logger.close()
        except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM: one line saying how to continue
            raise resume.interrupted(stop, trainer.state, *self._continued(trainer)) from None
        except OSError as err:  # a full disk: the checkpoint before it is kept
            if state is not None:  # the event file's last write, at close
                raise resume.write_failed_after_training(err, *self._continued(trainer)) from None
            raise resume.write_failed(err, *self._continued(trainer)) from None
        metrics = state.final_metrics(self.options.monitor)
        return self.finish(metrics | ({"pruned_at_epoch": pruned_at} if pruned_at else {}), trainer)

    def finish(self, metrics: dict, trainer: Trainer) -> dict:
        """The export and metrics.json (src/training/run_export.py), a signal waiting for them."""
        try:
            with stopping.deferred():  # a signal now waits for the last files: they are short
                finish_run(
                    self.checkpoint_path,
                    self.options.monitor,
                    self.check().source,
                    self.model,
                    self.data,
                    metrics,
                )
        except KeyboardInterrupt as stop:
            stopping.exit_stopped(
                stop, f"as the run finished: every file is written ({self.run_dir})"
            )
        except OSError as err:  # a full disk: the checkpoints are kept
            raise resume.write_failed_after_training(err, *self._continued(trainer)) from None
        has_best = self.checkpoint_path.with_name("best.pt").exists()
        log.info(follow_up.finished(self.run_dir, self.data.test_loader is not None, has_best))
        return metrics


def setup_model(
    source: ModelSource,
    data: Data,
    pretrained_path: str | None,
    pretrained_options: dict,
    exclude_origin: str = "",
) -> tuple[torch.nn.Module, LoadReport | None]:
    """The model for the data's input channels and classes, with the pretrained weights that
    fit; `exclude_origin`: where `pretrained.exclude` came from, for the report."""

    def make_model():
        return source.build(data.in_channels, data.num_classes)

    if pretrained_path is None:
        return make_model(), None
    # Built on the meta device, the model takes the checkpoint's tensors themselves.
    options = {**pretrained_options, "exclude_origin": exclude_origin}
    return pretrained.build_with_pretrained(make_model, pretrained_path, source.roles, **options)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too
