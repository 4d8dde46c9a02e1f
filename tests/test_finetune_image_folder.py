"""The README's fine-tuning story: a torchvision model on an image folder, from a checkpoint
with another head, through the real CLI; and every ready model config."""

import json

import pytest
import torch
import torchvision

from src.models.source import model_source
from src.training.checkpoints import PROGRESS
from tests.conftest import read_scalars, run_cli
from tests.generated_data import write_image_folder

MODELS = [
    "resnet18",
    "resnet50",
    "vit_b_16",
    "convnext_tiny",
    "efficientnet_b0",
    "mobilenet_v3_small",
]


@pytest.mark.parametrize("name", MODELS)
def test_each_ready_model_config_builds_for_the_runs_classes(make_cfg, name):
    cfg = make_cfg(f"model={name}", "pretrained=none")
    model = model_source(cfg.model).build(in_channels=3, num_classes=4).eval()
    # ViT's position embeddings fix its input size: built for the run's (the digits' 32 pixels)
    size = 32 if name == "vit_b_16" else 64
    with torch.no_grad():
        assert model(torch.zeros(1, 3, size, size)).shape == (1, 4)


def test_image_folder_configs_take_the_models_transforms(make_cfg):
    cfg = make_cfg("model=efficientnet_b0", "dataset=image_folder", "dataset.root=/x")
    assert cfg.dataset.transform_from == "model"  # the model source's own preprocessing
    assert model_source(cfg.model).preprocess().size == 224  # efficientnet_b0's weights'
    lenet = make_cfg("dataset=image_folder", "dataset.root=/x").model
    own = model_source(lenet).preprocess()  # LeNet names its size; the dataset gives the rest
    assert (own.size, own.resize, own.mean, own.std, own.channels) == (32, None, None, None, None)


@pytest.mark.e2e
def test_fine_tuning_resnet18_on_an_image_folder_end_to_end(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=10)
    # Stands in for ImageNet weights (torchvision's format: 1000 classes), nothing downloaded.
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18_imagenet.pt")
    run_dir = tmp_path / "run"
    result = run_cli(
        "model=resnet18",
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.image_size=32",
        "dataset.batch_size=8",
        f"pretrained.path={tmp_path / 'resnet18_imagenet.pt'}",
        "pretrained.exclude=[]",
        "+param_groups.head={pattern: '^fc\\.', lr_mult: 10}",
        "optimizer.lr=0.01",
        "trainer.max_epochs=3",
        f"hydra.run.dir={run_dir}",
    )
    report = json.loads((run_dir / "pretrained_report.json").read_text())
    assert report["skipped_shape"] == {
        "fc.weight": {"checkpoint": [1000, 512], "model": [3, 512]},
        "fc.bias": {"checkpoint": [1000], "model": [3]},
    }
    assert len(report["loaded"]) == 120 and "head     ^fc\\." in result.stdout
    scalars = read_scalars(run_dir)
    for (_, base), (_, head) in zip(scalars["lr/default"], scalars["lr/head"], strict=True):
        assert head == pytest.approx(10 * base)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["best"]["metric"] == "val/acc"
    assert (run_dir / "checkpoints" / "best.pt").exists()
    history = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)[PROGRESS][
        "history"
    ]
    assert history[-1]["train/loss"] < history[0]["train/loss"]  # it learns
