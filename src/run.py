"""Entry point: `python -m src.run [overrides]`. Hands the composed config to the runner."""

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src import hparams
from src.errors import GroupwiseError

# Lets configs name files shipped with the project wherever the command is run from.
OmegaConf.register_new_resolver(
    "project_dir", lambda: str(Path(__file__).resolve().parents[1]), replace=True
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
            print(f"groupwise: error: {problem}", file=sys.stderr)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the sweep summary records it; the other jobs still run
        sys.exit(2)
    return metrics["val/acc"] if metrics else None


if __name__ == "__main__":
    main()
