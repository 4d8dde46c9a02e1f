"""Entry point: `python -m src.run [overrides]`. Hands the composed config to the runner."""

import gc
import os
import shlex
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src import errors, stopping
from src.config import (
    checks,
    command,
    hydra_internals,
    resolvers,
    run_dir,
    run_help,
    schema,
    study,
    sweep,
)
from src.config.launch_record import Record
from src.config.study import PrunedJob
from src.tracking import hparams
from src.tracking.sweep_summary import FailedJob

resolvers.register()
schema.register()  # before Hydra composes: the config files start from the schemas


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()  # Hydra's state, read here only
    try:
        with stopping.deferred():  # torch: after Hydra parsed the command line, `--help` is fast
            from src.runner import Runner
        _start_up_done()
        launch = _launch(cfg, hydra_cfg)
        metrics = Runner(cfg, Path(hydra_cfg.runtime.output_dir), launch).run()
    except KeyboardInterrupt as stop:  # before training started: nothing to resume
        run_dir.remove_made_dirs()
        stopping.exit_stopped(
            stop, "before training started: no checkpoint to resume; rerun the command"
        )
    except Exception as err:
        if hydra_cfg.mode == RunMode.MULTIRUN and not isinstance(
            err, errors.Interrupted | errors.WriteFailed
        ):
            # Returned, not raised: Hydra's sweepers end the whole sweep at a job that raises;
            # this one keeps its row in the sweep summary and the other jobs still run.
            errors.report(err)
            return FailedJob.of(err)
        if isinstance(err, errors.GroupwiseError) and err.code != errors.WRITE_FAILED:
            run_dir.remove_made_dirs()  # a refused run leaves nothing behind
        errors.exit_if_user_mistake(err)
        raise  # a bug (or HYDRA_FULL_ERROR=1): Hydra prints its traceback
    if not metrics:
        return None
    # What a sweep ranks its jobs by (src/tracking/sweep_tables.py): best.pt's val/acc.
    result = (metrics.get("best") or {}).get("val/acc") or metrics["val/acc"]
    pruned_at = metrics.get("pruned_at_epoch")
    return result if pruned_at is None else PrunedJob(result, pruned_at)


def _launch(cfg: DictConfig, hydra_cfg: DictConfig):
    """What the run needs to know of how it was launched."""
    from src.runner import Launch

    overrides = list(hydra_cfg.overrides.task)
    loose = checks.loose_booleans(cfg, overrides)
    if loose:
        raise errors.GroupwiseError(*loose)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    typed_exclude = any(o.lstrip("+~").startswith("pretrained.exclude") for o in overrides)
    run_hparams = hparams.for_run(
        overrides,
        cfg,
        hydra_cfg.job.config.override_dirname.exclude_keys,
        swept=sweep.recorded_swept_keys(hydra_cfg.sweep.dir) if multirun else [],
        sampled=multirun and sweep.numbered(hydra_cfg.sweep.dir, hydra_cfg.sweeper._target_),
    )
    if run_hparams.swept:  # a sweep job's HPARAMS row is named by its values
        run_hparams.trial = hparams.trial_name(run_hparams, Path(hydra_cfg.runtime.output_dir))
    return Launch(
        hparams=run_hparams,
        # The command that reruns this run (a sweep job: alone, with its own values).
        command=shlex.join(["python", "-m", "src.run", *overrides]),
        # An exclusion set by a config file (the shipped default's new head) is easy to miss.
        exclude_origin=""
        if typed_exclude
        else f"set by the config files (pretrained={hydra_cfg.runtime.choices.get('pretrained')}), "
        "not the command line",
        # The basic launcher runs a sweep's jobs one after another; every other in parallel.
        parallel_sweep=multirun and hydra_cfg.runtime.choices["hydra/launcher"] != "basic",
        record=Record(
            cfg, HydraConfig.instance().cfg, overrides, resume=cfg.resume, launched=datetime.now()
        ),
        trial=study.job_trial(hydra_cfg.sweep.dir, hydra_cfg.job) if multirun else None,
    )


def _start_up_done() -> None:
    """From here on the command collects garbage as Python does, except for what its start-up
    made, which lives until exit: frozen, so that no collection scans it again (see `__main__`).
    A process that did not start as the command (tests, sweep workers) is left as it is."""
    if gc.isenabled():
        return
    # The compiler stack that torch imports the first time any optimizer is built (every run
    # builds one): 40% of start-up's objects, imported now, while the collector is off.
    with stopping.deferred():
        import torch._dynamo  # noqa: F401

    gc.freeze()
    gc.enable()


if __name__ == "__main__":
    # Start-up makes ~570,000 objects (torch, its compiler stack, Hydra) that live until exit.
    # Python's collector would scan them over and over while they are made, to free 5% of them
    # (small objects, left until exit now): 885 collections, 1.4 s CPU of the default run's
    # ~15 s, measured with gc.callbacks. Off until `main` has what a run needs.
    gc.disable()
    if "WORLD_SIZE" in os.environ:  # launched by torchrun (distributed.launched_by_torchrun)
        from src.training import (
            distributed,  # imports torch: only here, so that `--help` stays fast
        )

        distributed.setup()
        # Before Hydra names the run dir: every rank names it from rank 0's clock.
        resolvers.register(launch_time=distributed.rank_zero_time())
    # `python -m src.run | head`: the run goes on once the reader has gone, run.log keeps
    # every line, and no logging error is printed per line.
    with command.console_may_close(), stopping.on_signals():
        if {"-h", "--help"} & set(sys.argv[1:]):
            print(run_help.usage())
            sys.exit(0)
        unknown = hydra_internals.unknown_flags(sys.argv[1:])
        if unknown:
            errors.exit_with(*unknown[:1])
        try:
            with hydra_internals.config_errors_as_one_line():
                main()
        except KeyboardInterrupt as stop:  # in Hydra's start-up or its job's end, not a run's
            run_dir.remove_made_dirs()
            stopping.exit_stopped(stop, "outside a run's training: see run.log for where it stood")
    # Everything is written and closed: the interpreter's last collections at exit would
    # walk every object again (the default run's exit: 1.8 s, 0.5 s frozen); the OS frees them.
    gc.freeze()
