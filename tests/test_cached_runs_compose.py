"""A run trained on a cached image folder (uint8 crops, augmented on the device) composes
with the commands that use it: each policy trains on it, `src.evaluate` reads the same cache
and scores what the run scored, and `src.predict` (PIL, no cache) predicts what it predicts."""

import json
from pathlib import Path

import pytest
import torch
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from src import evaluate, predict
from src.runner import Runner
from src.trained_run import open_run
from src.training.evaluation import outputs
from tests.conftest import compose_config, read_scalars
from tests.generated_data import write_image_folder
from tests.tables import read_csv

pytestmark = pytest.mark.e2e  # whole runs


def cached_overrides(root: Path, cache_dir: Path, *more: str) -> list[str]:
    return [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.cache=true",
        f"dataset.cache_dir={cache_dir}",
        "dataset.image_size=32",
        "dataset.batch_size=8",
        "pretrained=none",
        *more,
    ]


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory):
    """LeNet, 3 epochs on a cached folder with train/, val/ and test/: RandAugment, random
    erasing and Mixup on the device."""
    tmp = tmp_path_factory.mktemp("cached_run")
    root = tmp / "photos"
    for split, per_class, seed in (("train", 8, 1), ("val", 4, 2), ("test", 10, 3)):
        write_image_folder(root / split, per_class=per_class, size=(64, 48), seed=seed)
    overrides = cached_overrides(
        root,
        tmp / "cache",
        "dataset.augment=randaugment",
        "dataset.random_erasing=0.25",
        "dataset.mixup_alpha=0.2",
        "optimizer.lr=0.05",  # learns the colours in 3 epochs (val/acc 0.67, then 1.0)
        "trainer.max_epochs=3",
    )
    Runner(compose_config(*overrides), tmp / "run").run()
    return tmp / "run", root


@pytest.mark.parametrize(
    ("policy", "kind"),
    [("trivialaugment", v2.TrivialAugmentWide), ("autoaugment", v2.AutoAugment)],
)
def test_each_policy_trains_on_a_cached_folder_on_the_device(policy, kind, tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=4)
    overrides = cached_overrides(
        root, tmp_path / "cache", f"dataset.augment={policy}", "trainer.max_epochs=1"
    )
    runner = Runner(compose_config(*overrides), tmp_path / "run")
    runner.run()
    assert isinstance(runner.data.train_on_device.policy.policy, kind)
    assert runner.data.eval_on_device.policy is None
    assert len(read_scalars(tmp_path / "run")["val/acc"]) == 1


def test_evaluate_on_a_cached_run_scores_what_the_run_scored_at_its_best_epoch(cached_run):
    run_dir, _ = cached_run
    evaluate.main([f"run_dir={run_dir}", "split=val", f"output={run_dir / 'val.json'}"])
    report = json.loads((run_dir / "val.json").read_text())
    val_acc = [value for _, value in read_scalars(run_dir)["val/acc"]]
    assert report["accuracy"] == pytest.approx(val_acc[report["epoch"] - 1], abs=1e-6)
    assert report["accuracy"] == pytest.approx(max(val_acc), abs=1e-6)  # best: by val/acc
    assert min(val_acc) < max(val_acc)  # the epochs differ: the best one is the one read


def test_predict_on_the_files_agrees_with_the_cached_evaluation(cached_run):
    """The cache stores each image resized by torch's antialiased kernel; `src.predict`
    resizes the file with PIL's: a pixel here and there differs by a grey level or two, which
    can tip an image on a decision boundary, so nearly all, not all, must agree."""
    run_dir, root = cached_run
    run = open_run(str(run_dir), "best")
    data = run.data()
    device = torch.device("cpu")
    model = run.model(data.in_channels, data.num_classes, device)
    logits = torch.cat(
        [
            b
            for b, _ in outputs(
                model, data.test_loader, device, run.autocast(device), data.eval_on_device
            )
        ]
    )
    files = [
        Path(path).relative_to(root / "test").as_posix()
        for path, _ in ImageFolder(root / "test").samples
    ]
    cached = {
        path: data.class_names[i] for path, i in zip(files, logits.argmax(1).tolist(), strict=True)
    }
    predict.main([f"run_dir={run_dir}", f"inputs={root / 'test'}", "device=cpu"])
    predictions = read_csv(run_dir / "predictions.csv")
    from_files = {row["path"]: row["predicted_class"] for row in predictions}
    assert from_files.keys() == cached.keys()
    assert len(set(cached.values())) == 3  # a model that learned, not one constant answer
    agree = sum(from_files[path] == cached[path] for path in cached)
    assert agree >= 0.9 * len(cached), (agree, len(cached))
