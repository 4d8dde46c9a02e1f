"""The schemas of the small commands beside `src.run` (`src.evaluate`, `src.predict`,
`src.cache`): conf/<command>.yaml starts from them (registered with the others by
`src.config.schema`)."""

from dataclasses import dataclass

from src.config.option import option


@dataclass
class EvaluateConfig:
    """`python -m src.evaluate`: conf/evaluate.yaml."""

    run_dir: str | None = option(
        None, "a finished run's dir, e.g. outputs/runs/<date>_<time>; or sweep_dir", path=True
    )
    sweep_dir: str | None = option(
        None, "a sweep's root: evaluate every finished job, refresh its summary", path=True
    )
    split: str = option("test", "the split to evaluate", choices=("test", "val"))
    checkpoint: str = option("best", "checkpoints/<name>.pt: best (by trainer.monitor) or last")
    device: str | None = option(None, "auto, cpu, cuda or cuda:N; null: the run's trainer.device")
    threads: int | None = option(
        None, "torch's CPU threads; null: the run's trainer.threads, chosen as a run chooses", ge=1
    )
    batch_size: int | None = option(None, "images per batch; null: the run's", ge=1)
    output: str | None = option(
        None, "the JSON to write; null: <run_dir>/eval_<split>.json (never overwritten)"
    )


@dataclass
class PredictConfig:
    """`python -m src.predict`: conf/predict.yaml."""

    run_dir: str = option("???", "a finished run's dir, e.g. outputs/runs/<date>_<time>", path=True)
    inputs: str = option("???", "an image file, or a folder of images (subfolders too)", path=True)
    output: str | None = option(
        None, "the CSV to write; null: <run_dir>/predictions.csv", path=True
    )
    checkpoint: str = option("best", "checkpoints/<name>.pt: best (by trainer.monitor) or last")
    top_k: int = option(5, "the k most probable classes per image (at most all classes)", ge=1)
    device: str | None = option(None, "auto, cpu, cuda or cuda:N; null: the run's trainer.device")
    threads: int | None = option(
        None, "torch's CPU threads; null: the run's trainer.threads, chosen as a run chooses", ge=1
    )
    batch_size: int = option(64, "images per batch", ge=1)
    num_workers: int = option(0, "worker processes decoding images", ge=0)


@dataclass
class SoupConfig:
    """`python -m src.soup`: conf/soup.yaml."""

    sweep_dir: str | None = option(
        None, "a sweep's root: the uniform and greedy soups of its finished jobs", path=True
    )
    run_dir: str | None = option(
        None,
        "a finished run's dir: WiSE-FT between its pretrained and fine-tuned weights",
        path=True,
    )
    wise_alphas: list[float] = option(
        [0.0, 0.25, 0.5, 0.75, 1.0], "run_dir: the fine-tuned weights' shares to try", ge=0, le=1
    )
    output_dir: str | None = option(
        None,
        "where the soups go (never a job's dir); null: <sweep_dir>/soups, <run_dir>_wise",
        path=True,
    )
    device: str | None = option(None, "auto, cpu, cuda or cuda:N; null: the run's trainer.device")
    batch_size: int | None = option(None, "images per batch; null: the run's", ge=1)


@dataclass
class CacheConfig:
    """`python -m src.cache`: conf/cache.yaml."""

    action: str = option(
        "list",
        "list: every decoded cache with its size, source and last use; clean: remove what no "
        "run holds of killed builds' leftovers, older versions and caches unused for a while",
        choices=("list", "clean"),
    )
    cache_dir: str | None = option(
        None, "the caches' folder (dataset.cache_dir); null: $XDG_CACHE_HOME/groupwise/decoded"
    )
    unused_for_days: float = option(
        30.0,
        "clean: remove whole caches last used longer ago than this (0: every unheld one)",
        ge=0,
    )
