"""The recipe experiments end to end through the CLI: experiment=vit_finetune on a timm ViT
(saved at another size: its position embeddings resampled) and on a Hugging Face ViT, and
experiment=convnet_finetune on a timm ConvNeXt, each from its own library's file."""

import json
import math

import pytest
import timm
import torch

from tests.conftest import read_scalars
from tests.generated_data import write_image_folder
from tests.model_families import hf_vit_dir
from tests.test_finetune_model_sources import run_in_this_process

pytestmark = pytest.mark.e2e  # three runs of the CLI


@pytest.mark.filterwarnings("ignore:'src.run' found in sys.modules:RuntimeWarning")
def test_the_recipes_fine_tune_timm_and_hugging_face_models(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=6)
    torch.manual_seed(0)
    vit_file, convnext_file = tmp_path / "vit.pth", tmp_path / "convnext.pth"
    torch.save(timm.create_model("test_vit", num_classes=10, img_size=64).state_dict(), vit_file)
    torch.save(timm.create_model("test_convnext", num_classes=10).state_dict(), convnext_file)
    hf_dir = hf_vit_dir(tmp_path / "hf_vit", num_labels=10)
    common = [
        f"dataset.root={root}", "dataset.image_size=32", "dataset.batch_size=8",
        "trainer.max_epochs=2", "trainer.device=cpu", "trainer.ema_decay=0.9",
    ]  # fmt: skip
    vit = ["experiment=vit_finetune", "scheduler.warmup_epochs=1", *common]
    runs = {
        "timm_vit": [*vit, "model.name=test_vit", f"pretrained.path={vit_file}"],
        # transformers' ViT has no stochastic depth: the recipe's drop path removed.
        "hf_vit": [*vit, "model=hf", f"model.name={hf_dir}", f"pretrained.path={hf_dir}",
                   "~model.drop_path_rate"],
        "timm_convnext": ["experiment=convnet_finetune", "model.name=test_convnext",
                          f"pretrained.path={convnext_file}", *common],
    }  # fmt: skip
    results = run_in_this_process(
        [[*args, f"hydra.run.dir={tmp_path / name}"] for name, args in runs.items()]
    )
    for name, result in zip(runs, results, strict=True):
        assert result["code"] == 0, f"{name}:\n{result['stderr']}"
        run_dir = tmp_path / name
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert all(math.isfinite(metrics[k]) for k in ("train/loss", "val/acc", "val_ema/acc"))
        scalars = read_scalars(run_dir)
        assert len(scalars["val_ema/acc"]) == 2 and len(scalars["val/acc"]) == 2
        config = json.loads(json.dumps(torch.load(run_dir / "checkpoints/last.pt")["config"]))
        assert config["dataset"]["augment"] == "randaugment"
        assert config["trainer"]["label_smoothing"] == 0.1
    report = json.loads((tmp_path / "timm_vit/pretrained_report.json").read_text())
    assert list(report["resampled"]) == ["pos_embed"]  # saved for 64 px, fine-tuned at 32
    assert report["resampled"]["pos_embed"]["model"][1] == 1 + 2 * 2
    vit_config = torch.load(tmp_path / "timm_vit/checkpoints/last.pt")["config"]
    assert vit_config["model"]["drop_path_rate"] == 0.1
    assert vit_config["dataset"]["mixup_alpha"] == 0.8
