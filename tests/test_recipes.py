"""The recipe experiments end to end through the CLI: experiment=vit_finetune on a timm ViT
(saved at another size: its position embeddings resampled) and on a Hugging Face ViT, and
experiment=convnet_finetune on a timm ConvNeXt, each from its own library's file; each part of
a recipe seen acting in its run: the batches mixed, the images augmented and erased, the loss
smoothed, paths dropped, and the EMA that val_ema/* scores."""

import json
import math

import pytest
import timm
import torch
from timm.layers import DropPath
from torch.nn import functional as F
from torchvision.transforms import v2

import src.runner
from src.runner import Runner
from tests.conftest import read_scalars, run_cli_here
from tests.generated_data import write_image_folder
from tests.model_families import hf_vit_dir

pytestmark = pytest.mark.e2e  # three runs of the CLI


class Recorder:
    """What a run does, recorded on its own objects as `python -m src.run` trains in this
    process: its Trainer (model, EMA, loaders), each batch before and after Mixup/CutMix, and
    each training loss with the targets and smoothing it was taken with."""

    def __init__(self, monkeypatch):
        self.trainers, self.mixes, self.losses = [], [], []
        build_trainer, batch_mixing, cross_entropy = (
            Runner.build_trainer,
            src.runner.mixing.batch_mixing,
            F.cross_entropy,
        )

        def keep_trainer(runner, *args):
            self.trainers.append(build_trainer(runner, *args))
            return self.trainers[-1]

        def recording_mixing(*args):
            mixing = batch_mixing(*args)

            def mix(images, labels):
                mixed, targets = mixing(images, labels)
                self.mixes.append((images, labels, mixed, targets))
                return mixed, targets

            return mixing and mix

        def recording_loss(logits, target, **kwargs):
            loss = cross_entropy(logits, target, **kwargs)
            if "label_smoothing" in kwargs:  # a training step's (evaluation passes none)
                self.losses.append((logits.detach(), target, kwargs["label_smoothing"], loss))
            return loss

        monkeypatch.setattr(Runner, "build_trainer", keep_trainer)
        monkeypatch.setattr(src.runner.mixing, "batch_mixing", recording_mixing)
        monkeypatch.setattr(F, "cross_entropy", recording_loss)
        self.plain_cross_entropy = cross_entropy

    def run(self, *args: str) -> dict:
        """The CLI's run of `args`, and what it did."""
        self.trainers.clear(), self.mixes.clear(), self.losses.clear()
        run_cli_here(*args)
        (trainer,) = self.trainers
        return {"trainer": trainer, "mixes": list(self.mixes), "losses": list(self.losses)}


def assert_mixed(mixes: list, classes: int) -> None:
    """Every training batch mixed: new images, soft targets that sum to 1, some not one-hot."""
    assert mixes
    for images, labels, mixed, targets in mixes:
        assert not torch.equal(mixed, images)
        assert targets.shape == (len(labels), classes)
        torch.testing.assert_close(targets.sum(1), torch.ones(len(labels)))
        assert (targets.max(1).values < 1).any()


def assert_smoothed(losses: list, smoothing: float) -> None:
    """Every training loss taken with the smoothing, and different from the loss without."""
    assert losses
    for logits, target, taken_with, loss in losses:
        assert taken_with == smoothing
        assert not torch.isclose(loss, F.cross_entropy(logits, target, label_smoothing=0.0))


def assert_augmented_and_erased(trainer, magnitude: int, erasing: float) -> None:
    """The run's own training transform: its RandAugment changes an image, and its random
    erasing blanks a box (0: the mean colour, which no normalised pixel of a PNG is) in about
    the share of draws asked."""
    folder = trainer.data.train_loader.dataset.dataset  # the train split of the ImageFolder
    transform = folder.transform
    (randaugment,) = [t for t in transform.transforms if isinstance(t, v2.RandAugment)]
    assert (randaugment.num_ops, randaugment.magnitude) == (2, magnitude)
    image = folder.loader(folder.samples[0][0])
    torch.manual_seed(0)
    changed = [
        not torch.equal(
            v2.functional.pil_to_tensor(randaugment(image)), v2.functional.pil_to_tensor(image)
        )
        for _ in range(10)
    ]
    assert sum(changed) >= 8  # an op can be the identity, or change nothing on a flat colour
    erased = [(transform(image) == 0).all(0).any().item() for _ in range(80)]
    assert abs(sum(erased) / len(erased) - erasing) < 0.15


def differs_in_training(model: torch.nn.Module, images: torch.Tensor) -> bool:
    """Whether two passes of `images` in training mode differ (in evaluation they agree)."""
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(images), model(images))
        model.train()
        differs = not torch.equal(model(images), model(images))
        model.eval()
    return differs


def assert_ema_is_what_val_ema_scores(trainer, run_dir) -> None:
    """The EMA is not the model, and val_ema/* (val/*) are the EMA's (model's) scores."""
    model, ema = trainer.model.state_dict(), trainer.ema.module.state_dict()
    assert any(not torch.equal(model[k], ema[k]) for k in model if model[k].is_floating_point())
    scalars = read_scalars(run_dir)
    for prefix, scored in (("val", trainer.model), ("val_ema", trainer.ema.module)):
        loss, acc = trainer.evaluate(scored)
        assert scalars[f"{prefix}/loss"][-1][1] == pytest.approx(loss, rel=1e-5)
        assert scalars[f"{prefix}/acc"][-1][1] == pytest.approx(acc)
    assert scalars["val_ema/loss"] != scalars["val/loss"]


def test_the_recipes_fine_tune_timm_and_hugging_face_models_and_each_part_acts(
    tmp_path, monkeypatch
):
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
    # Mixup/CutMix is the ViT recipe's; a ConvNeXt fine-tune (Liu et al. 2022) uses none.
    mixed = {"timm_vit": True, "hf_vit": True, "timm_convnext": False}
    drops_paths = {"timm_vit": True, "hf_vit": False, "timm_convnext": True}
    recorder = Recorder(monkeypatch)
    for name, args in runs.items():
        run_dir = tmp_path / name
        done = recorder.run(*args, f"hydra.run.dir={run_dir}")
        trainer = done["trainer"]
        assert (len(done["mixes"]) == 4) == mixed[name], name  # 2 batches an epoch
        if mixed[name]:
            assert_mixed(done["mixes"], classes=3)
        assert_smoothed(done["losses"], 0.1)
        assert_augmented_and_erased(trainer, magnitude=27, erasing=0.25)
        assert_ema_is_what_val_ema_scores(trainer, run_dir)
        # 3 validation images, 8 times over: at drop rates up to 0.1 (ViT) or 0.2 (ConvNeXt),
        # a pass that drops no path of any image is all but impossible.
        images = torch.cat([next(iter(trainer.data.val_loader))[0]] * 8)
        torch.manual_seed(0)
        assert differs_in_training(trainer.model, images) == drops_paths[name], name
        if drops_paths[name]:  # and it is the drop path that differs
            for module in trainer.model.modules():
                if isinstance(module, DropPath):
                    module.drop_prob = 0.0
            assert not differs_in_training(trainer.model, images), name
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert math.isfinite(metrics["train/loss"])
        assert len(read_scalars(run_dir)["val_ema/acc"]) == 2
    report = json.loads((tmp_path / "timm_vit/pretrained_report.json").read_text())
    assert list(report["resampled"]) == ["pos_embed"]  # saved for 64 px, fine-tuned at 32
    assert report["resampled"]["pos_embed"]["model"][1] == 1 + 2 * 2
