"""`python -m src.soup sweep_dir=<a sweep's root>`: the uniform and the greedy soup of the
sweep's finished jobs, in <sweep_dir>/soups/uniform and .../greedy.

`python -m src.soup run_dir=<a finished run> [wise_alphas=[0,0.25,0.5,0.75,1]]`: WiSE-FT, the
run's fine-tuned weights interpolated with its pretrained ones (the new head as trained), the
alpha best on val kept, in <run_dir>_wise.

Every soup is written as a run (checkpoints, export/, metrics.json, soup.json with what it is
made of and the command), so `src.evaluate`, `src.predict` and `src.evaluate sweep_dir=` use it
as they use any run. The jobs must share the model, the pretrained weights and the data split.
"""

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from src.config.command import run_command, written
from src.errors import GroupwiseError, WriteFailed
from src.pretrained.load import build_with_pretrained, check_options
from src.soups import ingredients, recipes
from src.soups.soup_run import write_soup_run
from src.soups.tasting import Tasting
from src.tracking.sweep_soups import SOUPS_DIR, WISE_DIR
from src.trained_run import open_run


def soup_sweep(cfg: DictConfig) -> list[Path]:
    sweep_dir = Path(cfg.sweep_dir).expanduser()
    jobs = ingredients.from_sweep(sweep_dir)
    ingredients.check_soupable(jobs)
    soups = Path(cfg.output_dir or sweep_dir / SOUPS_DIR).expanduser()
    for kind in ("uniform", "greedy"):  # beside them, WiSE-FT of the jobs may be there already
        _fresh_dir(soups / kind, jobs)
    tasting = _tasting(jobs[0], cfg)
    recipes.taste_each(jobs, tasting)
    made = []
    for recipe in (recipes.uniform, recipes.greedy):
        weights, taste, record = recipe(jobs, tasting)
        run_dir = soups / record["kind"]
        made.append(run_dir)
        with _all_or_nothing(made):
            write_soup_run(run_dir, weights, taste, tasting, record)
        used = sum(entry["in_soup"] for entry in record["ingredients"])
        print(
            f"{record['kind']} soup of {used} of {len(jobs)} jobs: val/acc {taste.accuracy:.4f} "
            f"(best job {max(job.val_acc for job in jobs):.4f}); written: {run_dir}"
        )
    print(f"test split: python -m src.evaluate sweep_dir={sweep_dir}")
    return made


def wise(cfg: DictConfig) -> Path:
    run_dir = Path(cfg.run_dir).expanduser()
    open_run(cfg.run_dir, "last")  # refuses, in one line, what is not a finished run
    job = ingredients.read(run_dir)
    if not job.cfg["pretrained"].get("path"):
        raise GroupwiseError(
            f"run_dir={cfg.run_dir}: trained without pretrained weights (pretrained.path is "
            "null): WiSE-FT interpolates towards them; pass a fine-tuned run"
        )
    output = _fresh_dir(cfg.output_dir or _wise_dir(run_dir), [job])
    tasting = _tasting(job, cfg)
    recipes.taste_each([job], tasting)
    pretrained = job.cfg["pretrained"]
    options = check_options({k: v for k, v in pretrained.items() if k != "path"})
    source, data = tasting.run.source, tasting.data
    start, report = build_with_pretrained(
        lambda: source.build(data.in_channels, data.num_classes),
        pretrained["path"],
        source.roles,
        **options,
    )
    interpolated = {*report.loaded, *report.adapted, *report.resampled}
    alphas = list(cfg.wise_alphas)
    weights, taste, record = recipes.wise(job, start.state_dict(), interpolated, alphas, tasting)
    with _all_or_nothing([output]):
        write_soup_run(output, weights, taste, tasting, record)
    for tried in record["alphas"]:
        print(f"alpha {tried['alpha']:<5g} val/acc {tried['accuracy']:.4f}")
    print(f"kept alpha {record['alpha']:g} (val/acc {taste.accuracy:.4f}); written: {output}")
    return output


def _tasting(job: ingredients.Ingredient, cfg: DictConfig) -> Tasting:
    reference = open_run(str(job.run_dir), job.checkpoint.stem)
    return Tasting(reference, reference.device(cfg.device), cfg.batch_size)


@contextlib.contextmanager
def _all_or_nothing(made: list[Path]) -> Iterator[None]:
    """A write that fails (a full disk) leaves no half soup behind to be taken for a whole one:
    the dirs this command made are removed, and the line says so (exit 74)."""
    shown = " and ".join(str(path) for path in made)
    try:
        with written(made[-1], f"{shown} removed, nothing of them kept: free space, run it again"):
            yield
    except WriteFailed:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _wise_dir(run_dir: Path) -> Path:
    """WiSE-FT of a sweep's job goes to the sweep's soups (its summary then shows it beside the
    job); of a single run, beside the run."""
    if (run_dir.parent / "multirun.yaml").is_file():  # Hydra's record at a sweep's root
        return run_dir.parent / SOUPS_DIR / WISE_DIR / run_dir.name
    return run_dir.with_name(f"{run_dir.name}_wise")


def _fresh_dir(path: str | Path, jobs: list[ingredients.Ingredient]) -> Path:
    """A new dir for the soups: never an existing one, never inside a job's dir (a finished
    run is read-only)."""
    path = Path(path).expanduser()
    for job in jobs:
        if path.resolve().is_relative_to(job.run_dir.resolve()):
            raise GroupwiseError(
                f"output_dir={path}: inside the job {job.run_dir} (a finished run is never "
                "written to); pass a dir outside it"
            )
    if path.exists():
        raise GroupwiseError(
            f"output_dir={path}: already exists (nothing was overwritten); move it away, or "
            "pass another output_dir="
        )
    return path


def _sweep_or_run(cfg: DictConfig) -> object:
    if (cfg.run_dir is None) == (cfg.sweep_dir is None):
        raise GroupwiseError(
            "sweep_dir=<a sweep's root> (soups) or run_dir=<a finished run> (WiSE-FT): give one"
            + (", not both" if cfg.run_dir is not None else "")
        )
    if cfg.run_dir is not None:
        return wise(cfg)
    return soup_sweep(cfg)


def main(args: list[str]) -> None:
    run_command("soup", __doc__, _sweep_or_run, args)


if __name__ == "__main__":
    main(sys.argv[1:])
