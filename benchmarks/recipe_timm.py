"""The BEiT / MAE fine-tuning recipe of `experiment=vit_finetune`, written as a user writes it
with timm's own parts: recipe_vs_timm.py's baseline.

    python -m benchmarks.recipe_timm ROOT PRETRAINED OUT.json --epochs 10 --seed 0 [...]

timm's transforms on a torchvision ImageFolder (root/train, root/val) and a DataLoader, timm's
ViT with drop path, the pretrained state_dict but its head, `create_optimizer_v2(layer_decay=)`,
`create_scheduler_v2` stepped per update, `Mixup` with label smoothing into
`SoftTargetCrossEntropy`, `ModelEmaV3` with warmup; the model and its EMA evaluated every
epoch; a checkpoint at the end. OUT.json gets the last epoch's accuracies. Two of timm's traps
are avoided as a user who met them would: RandAugment's `inc1` posterize asks Pillow 13 for 0
bits at magnitudes above 9 and raises (`-mmax9` clips them), and the scheduler is stepped per
update (`step_update`), not per epoch.
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from timm import create_model
from timm.data import Mixup, create_transform, resolve_data_config
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder


def evaluate(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += len(labels)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("pretrained", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--model-args", default="{}", help="JSON: create_model's further keys")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup-epochs", type=float, default=1)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ema-decay", type=float, default=0.9998)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    classes = len(list((args.root / "train").iterdir()))
    model = create_model(
        args.model, num_classes=classes, drop_path_rate=0.1, **json.loads(args.model_args)
    )
    state = torch.load(args.pretrained, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")}, False)

    # The pretrained config's input size is the 224 of the name, not the model's img_size.
    data_config = resolve_data_config({"input_size": (3, *model.patch_embed.img_size)}, model=model)
    train_tf = create_transform(
        **data_config, is_training=True, auto_augment="rand-m9-mstd0.5-inc1-mmax9", re_prob=0.25
    )
    eval_tf = create_transform(**data_config)
    train_set = ImageFolder(args.root / "train", train_tf)
    val_loader = DataLoader(ImageFolder(args.root / "val", eval_tf), batch_size=256)
    train_loader = DataLoader(
        train_set,
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )

    optimizer = create_optimizer_v2(
        model, "adamw", lr=args.lr, weight_decay=0.05, layer_decay=0.75, betas=(0.9, 0.999)
    )
    scheduler, _ = create_scheduler_v2(
        optimizer,
        "cosine",
        num_epochs=args.epochs,
        warmup_epochs=args.warmup_epochs,
        warmup_lr=0.0,
        warmup_prefix=True,  # the cosine starts after the warmup, as MAE's
        min_lr=0.0,
        step_on_epochs=False,
        updates_per_epoch=len(train_loader),
    )
    mixup = Mixup(
        mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=classes
    )  # switch_prob 0.5, per batch
    criterion = SoftTargetCrossEntropy()
    ema = ModelEmaV3(model, decay=args.ema_decay, use_warmup=True)

    updates, history = 0, []
    for epoch in range(args.epochs):
        model.train()
        for images, labels in train_loader:
            images, targets = mixup(images, labels)
            loss = criterion(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            updates += 1
            scheduler.step_update(num_updates=updates)
            ema.update(model, step=updates)
        scheduler.step(epoch + 1)
        history.append({"acc": evaluate(model, val_loader), "ema_acc": evaluate(ema, val_loader)})
        print(f"epoch {epoch}: loss {loss.item():.3f} {history[-1]}", flush=True)
    torch.save(
        {"model": model.state_dict(), "ema": ema.state_dict(), "epoch": args.epochs},
        args.out.with_suffix(".pt"),
    )
    args.out.write_text(json.dumps({**history[-1], "history": history}))


if __name__ == "__main__":
    main()
