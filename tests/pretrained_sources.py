"""Checkpoints as real tools write them, made locally for the pretrained tests."""

import os
from pathlib import Path

import torch
from torch import nn

from src.models.contract import ParameterRoles
from src.models.lenet import LeNet, LeNetSource
from src.models.source import CustomSource


def source_roles(model: nn.Module) -> ParameterRoles:
    """The roles a run's model source names in `model`: LeNet's own for a LeNet; for any other,
    those of a user's own module (its first convolution as the stem)."""
    if isinstance(model, LeNet):
        return LeNetSource().roles(model)
    return CustomSource(f"{type(model).__module__}.{type(model).__name__}").roles(model)


def lightning_checkpoint(model: nn.Module, attribute: str = "model", **extra) -> dict:
    """What `Trainer.save_checkpoint` writes for a LightningModule holding `model` as
    `self.<attribute>`: its state_dict keys carry that attribute, beside the loop's state."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
    return {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"{attribute}.{k}": v for k, v in model.state_dict().items()},
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.31),
                "best_model_path": "/runs/epoch=3.ckpt",
            }
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 0.1, "num_classes": 5},
        **extra,
    }


def torchvision_cache(torch_home: Path, weights_name: str) -> Path:
    """Stand a randomly initialised state_dict in for torchvision's download, in the file
    torch.hub's cache under $TORCH_HOME would hold it: torchvision's own code finds it there."""
    import torchvision

    weights = torchvision.models.get_weight(weights_name)
    builder = weights_name.split("_Weights")[0].lower()
    model = torchvision.models.get_model(builder, weights=None)
    path = torch_home / "hub" / "checkpoints" / os.path.basename(weights.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def hub_cache(cache: Path, repo_id: str, revision: str = "0" * 40) -> Path:
    """The snapshot folder of `repo_id` in a Hugging Face hub cache laid out as
    huggingface_hub writes it (models--org--name/refs/main -> snapshots/<commit>/), for the
    test to fill with files the libraries save: stands in for a download."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    return snapshot
