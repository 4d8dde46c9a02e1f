"""The runs a soup is made of, and the check that they can be averaged: the same model, the
same pretrained weights, the same data split, the same parameter names and shapes.

Averaging weights is meaningful only between models fine-tuned from one starting point (Model
soups, Wortsman et al. 2022): two models trained from different weights sit in different
basins, and their average is no model at all. One line names the first job that differs.
"""

from dataclasses import dataclass, field
from pathlib import Path

from src.data import image_folder
from src.errors import GroupwiseError
from src.soups.average import mapped_weights
from src.tracking import sweep_summary
from src.training.checkpoints import CONFIG, load_checkpoint_or_explain

# The dataset options that decide which images are train, val and test: a soup chosen on one
# job's val split must not hold a job that trained on those images.
IMAGE_FOLDER = f"{image_folder.__name__}.image_folder"  # its _target_
PROJECT_DATASETS = "src.data."  # the _target_ of each kind groupwise ships: all split by a seed
SPLIT_KEYS = ("_target_", "root", "classes", "shots_per_class", "val_fraction", "test_fraction")


@dataclass
class Ingredient:
    run_dir: Path
    checkpoint: Path  # checkpoints/best.pt, or last.pt in a run without a monitor
    cfg: dict  # the config it was trained with, resolved
    weights: str = ""  # which weights it serves: model, or ema
    shapes: dict[str, list[int]] = field(default_factory=dict)
    val_acc: float = float("nan")  # measured by the soup command, on the soup's val split

    def record(self) -> dict:
        """Its entry in soup.json."""
        return {
            "run_dir": str(self.run_dir),
            "checkpoint": str(self.checkpoint.relative_to(self.run_dir)),
            "weights": self.weights,
            "val_acc": self.val_acc,
        }


def read(run_dir: Path) -> Ingredient:
    """A finished run as an ingredient: its best checkpoint (else its last), read mapped."""
    checkpoints = run_dir / "checkpoints"
    path = (
        checkpoints / "best.pt" if (checkpoints / "best.pt").is_file() else checkpoints / "last.pt"
    )
    if not (run_dir / "metrics.json").is_file() or not path.is_file():
        raise GroupwiseError(f"{run_dir}: not a finished run (no metrics.json or checkpoint)")
    cfg = load_checkpoint_or_explain(path, str(run_dir), "train it anew")[CONFIG]
    weights, which = mapped_weights(path)
    shapes = {key: list(value.shape) for key, value in weights.items()}
    return Ingredient(run_dir, path, cfg, which, shapes)


def from_sweep(sweep_dir: Path) -> list[Ingredient]:
    """Every completed job of the sweep at `sweep_dir`, in job order."""
    rows = sweep_summary.gather_rows(sweep_dir) if sweep_dir.is_dir() else []
    finished = [row["path"] for row in rows if row["status"] == "completed"]
    if not finished:
        raise GroupwiseError(
            f"sweep_dir={sweep_dir}: no finished jobs (no job dirs with {sweep_summary.JOB_FILE} "
            "and a completed status); pass the dir a multirun printed, or run_dir= for WiSE-FT"
        )
    return [read(Path(path)) for path in finished]


def check_soupable(ingredients: list[Ingredient]) -> None:
    """Refuse, in one line naming the job, the first ingredient that differs from the first."""
    first = ingredients[0]
    for other in ingredients[1:]:
        difference = _difference(first, other)
        if difference:
            raise GroupwiseError(
                f"{other.run_dir}: cannot be souped with {first.run_dir}: {difference}; a soup "
                "averages models fine-tuned from the same weights, on the same split"
            )


def _difference(first: Ingredient, other: Ingredient) -> str:
    if first.cfg["model"] != other.cfg["model"]:
        return "another model (its `model` config differs)"
    if first.cfg["pretrained"].get("path") != other.cfg["pretrained"].get("path"):
        return (
            f"other pretrained weights ({other.cfg['pretrained'].get('path')} against "
            f"{first.cfg['pretrained'].get('path')})"
        )
    for key in SPLIT_KEYS:
        if first.cfg["dataset"].get(key) != other.cfg["dataset"].get(key):
            return f"another dataset or split (dataset.{key} differs)"
    if split_seed(first.cfg) != split_seed(other.cfg):
        return (
            f"another data split (split seed {split_seed(other.cfg)} against "
            f"{split_seed(first.cfg)}: its training images are the other's val and test "
            "images); sweep the seeds with dataset.split_seed fixed"
        )
    if first.shapes.keys() != other.shapes.keys():
        names = sorted(first.shapes.keys() ^ other.shapes.keys())
        return f"other parameter names ({', '.join(names[:3])} in one only)"
    for key, shape in first.shapes.items():
        if other.shapes[key] != shape:
            return f"{key} has shape {other.shapes[key]} against {shape}"
    return ""


def split_seed(cfg: dict) -> int | None:
    """The seed a run's split follows: dataset.split_seed where set, else the run's seed; None
    where the split is fixed by the files (an image folder with train/ and val/, a dataset of
    the user's own without the option). A project dataset's run saved before the option
    existed has no key: its split followed its seed."""
    dataset = cfg["dataset"]
    ours = dataset["_target_"].startswith(PROJECT_DATASETS)
    if ("split_seed" not in dataset and not ours) or _split_by_folders(dataset):
        return None
    return cfg["seed"] if dataset.get("split_seed") is None else dataset["split_seed"]


def _split_by_folders(dataset: dict) -> bool:
    return dataset["_target_"] == IMAGE_FOLDER and image_folder.has_split_folders(dataset["root"])
