"""The issue's end-to-end story, through the CLI: a timm ResNet, a timm ViT and a Hugging Face
ViT, each fine-tuned on an image folder at 32 pixels from a checkpoint its own library saved
(timm's CheckpointSaver, torch.save of a state_dict, save_pretrained), under a layer-decay
preset; the load report, TensorBoard's lr ratios and the metrics read back."""

import json
import math

import pytest
import timm
import torch
from timm.utils import CheckpointSaver

from tests.conftest import read_scalars, run_cli_here
from tests.generated_data import write_image_folder
from tests.model_families import hf_vit_dir

pytestmark = pytest.mark.e2e  # three runs of the CLI

STEM = 0.75**4
# vit_layer_decay's embeddings: one step below block 0 of the model's own n blocks, 0.75^(n + 1)


def timm_resnet_checkpoint(folder):
    """timm's train.py way: a CheckpointSaver writes model_best.pth.tar (weights under
    `state_dict`, beside the optimizer, epoch and metric)."""
    model = timm.create_model("test_resnet", num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    saver = CheckpointSaver(model, optimizer, checkpoint_dir=str(folder), recovery_dir=str(folder))
    saver.save_checkpoint(epoch=0, metric=0.5)
    return model, folder / "model_best.pth.tar"


def timm_vit_checkpoint(folder):
    model = timm.create_model("test_vit", num_classes=10, img_size=32)
    torch.save(model.state_dict(), folder / "test_vit.pth")
    return model, folder / "test_vit.pth"


def test_timm_and_hugging_face_models_fine_tune_from_their_own_libraries_files(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=6)  # 14 to train: 2 steps per epoch
    torch.manual_seed(0)
    resnet, resnet_file = timm_resnet_checkpoint(tmp_path)
    vit, vit_file = timm_vit_checkpoint(tmp_path)
    hf_dir = hf_vit_dir(tmp_path / "hf_vit", num_labels=10)
    common = [
        "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=32",
        "dataset.batch_size=8", "trainer.max_epochs=2", "trainer.log_every_n_steps=1",
        "trainer.device=cpu", "optimizer=adamw", "scheduler=warmup_cosine",
        "scheduler.warmup_epochs=1", "pretrained=none",
    ]  # fmt: skip
    runs = {
        "timm_resnet": ["model=timm", "model.name=test_resnet", f"pretrained.path={resnet_file}",
                        "param_groups=resnet_layer_decay"],
        "timm_vit": ["model=timm", "model.name=test_vit", f"pretrained.path={vit_file}",
                     "param_groups=vit_layer_decay"],
        "hf_vit": ["model=hf", f"model.name={hf_dir}", f"pretrained.path={hf_dir}",
                   "param_groups=vit_layer_decay"],
    }  # fmt: skip
    # In this process: the runs share the imports of torch, timm and transformers it has made.
    for name, args in runs.items():
        run_cli_here(*common, *args, f"hydra.run.dir={tmp_path / name}")
    heads = {"timm_resnet": "fc", "timm_vit": "head", "hf_vit": "classifier"}
    sources = {
        "timm_resnet": len(resnet.state_dict()),
        "timm_vit": len(vit.state_dict()),
        "hf_vit": 40,
    }
    ratios = {
        "timm_resnet": {"stem": STEM, **{f"stages.{k}": 0.75 ** (3 - k) for k in range(4)}},
        "timm_vit": {"embeddings": 0.75**7, **{f"blocks.{i}": 0.75 ** (6 - i) for i in range(6)}},
        "hf_vit": {"embeddings": 0.75**3, "blocks.0": 0.75**2, "blocks.1": 0.75},
    }
    for name in runs:
        run_dir = tmp_path / name
        report = json.loads((run_dir / "pretrained_report.json").read_text())
        head = heads[name]
        assert report["skipped_shape"] == {  # the body loaded, the 10-class head skipped
            f"{head}.weight": {"checkpoint": [10, report["skipped_shape"][f"{head}.weight"]["model"][1]],
                               "model": [3, report["skipped_shape"][f"{head}.weight"]["model"][1]]},
            f"{head}.bias": {"checkpoint": [10], "model": [3]},
        }, name  # fmt: skip
        assert report["counts"]["loaded"] == sources[name] - 2, name
        assert not report["unexpected"] and report["loaded_share"] > 0.98, name
        scalars = read_scalars(run_dir)
        base = scalars["lr/default"]
        assert len(base) == 4 and len({lr for _, lr in base}) > 1  # every step, scheduled
        for group, ratio in ratios[name].items():
            for (step, lr), (base_step, base_lr) in zip(scalars[f"lr/{group}"], base, strict=True):
                assert step == base_step and lr == pytest.approx(ratio * base_lr, rel=1e-5), (
                    name,
                    group,
                )
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert all(math.isfinite(metrics[k]) for k in ("val/acc", "val/loss", "train/loss")), name
