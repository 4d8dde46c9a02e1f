"""Entry point: `python -m src.run [overrides]`. Hands the composed config to the runner."""

import os
import sys
from datetime import datetime
from pathlib import Path

import hydra
from hydra._internal import utils as hydra_internal_utils
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.config import schema
from src.config.hydra_errors import CONFIG_ERRORS, one_line
from src.errors import GroupwiseError
from src.tracking import hparams

schema.register()  # before Hydra composes: the config files start from the schemas
# Lets configs name files shipped with the project wherever the command is run from.
OmegaConf.register_new_resolver(
    "project_dir", lambda: str(Path(__file__).resolve().parents[1]), replace=True
)
# Hydra records each launch's config in hydra.output_subdir: a resume records its own beside
# the record of how the run was started, instead of overwriting it.
OmegaConf.register_new_resolver(
    "launch_record_dir",
    lambda resume: f".hydra/resume_{datetime.now():%Y-%m-%d_%H-%M-%S}" if resume else ".hydra",
    replace=True,
)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from src.runner import Runner  # after Hydra parsed the command line: `--help` stays fast

    hydra_cfg = HydraConfig.get()
    swept = hparams.from_overrides(
        list(hydra_cfg.overrides.task), cfg, hydra_cfg.job.config.override_dirname.exclude_keys
    )
    try:
        metrics = Runner(cfg, Path(hydra_cfg.runtime.output_dir), swept).run()
    except GroupwiseError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        for problem in err.problems:
            print(f"groupwise: error: {_own_words(problem)}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the sweep summary records it; the other jobs still run
        sys.exit(2)
    return metrics["val/acc"] if metrics else None


def _own_words(problem: str) -> str:
    """A DataLoader worker's error arrives wrapped in the worker's traceback; the last line
    holds the message as raised."""
    if problem.startswith("Caught GroupwiseError in DataLoader worker"):
        return problem.strip().splitlines()[-1].removeprefix("src.errors.GroupwiseError: ")
    return problem


def _report_config_errors(run_and_report):
    """Hydra runs composition through `run_and_report`, which prints its errors over several
    lines: report the user's config mistakes as one line instead (exit 2, like ours)."""

    def wrapped(func):
        def call():
            try:
                return func()
            except CONFIG_ERRORS as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"groupwise: error: {one_line(err)}", file=sys.stderr)
                sys.exit(2)

        return run_and_report(call)

    return wrapped


hydra_internal_utils.run_and_report = _report_config_errors(hydra_internal_utils.run_and_report)

if __name__ == "__main__":
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun
        from src.training import (
            distributed,  # imports torch: only here, so that `--help` stays fast
        )

        distributed.setup()  # before Hydra names the run dir: from rank 0's clock on every rank
    main()
