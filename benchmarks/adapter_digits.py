"""Accuracy of full fine-tuning, LoRA and LoRA+ on the digits transfer with a ViT: a small ViT
(timm's vit_tiny_patch16_224 at 32 pixels) trained from scratch on digits 0-4, then fine-tuned
on digits 5-9 the three ways over several seeds, by the CLI's own sweep
(experiment=adapter_digits), whose summary.md gives the verdict (a winner, or no clear winner
within the seeds' noise).

    python benchmarks/adapter_digits.py --out outputs/adapter_digits     # the study
    python benchmarks/adapter_digits.py --smoke --out /tmp/adapter_smoke  # 1 epoch, 1 seed

Every run uses one torch thread (`trainer.threads=1`): on a machine shared with other work
that is faster than torch's default (benchmarks/threads_under_load.py).
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIT = ["model=timm", "model.name=vit_tiny_patch16_224", "dataset.image_size=32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the source run and the sweep")
    parser.add_argument("--smoke", action="store_true", help="1 epoch each, 1 seed, 4 shots")
    parser.add_argument("--source-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10, help="each fine-tune's epochs")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    small = ["dataset.shots_per_class=4", "dataset.batch_size=8"] if args.smoke else []
    source_epochs, epochs, seeds = (1, 1, "0") if args.smoke else (
        args.source_epochs, args.epochs, args.seeds
    )  # fmt: skip
    source = args.out / "source"
    run(
        "experiment=pretrain_digits", *VIT, "optimizer=adamw", "optimizer.lr=1e-3",
        "scheduler=cosine", f"trainer.max_epochs={source_epochs}", "trainer.threads=1", *small,
        f"hydra.run.dir={source}",
    )  # fmt: skip
    sweep = args.out / "sweep"
    run(
        "-m", "experiment=adapter_digits", f"pretrained.path={source}/checkpoints/last.pt",
        f"trainer.max_epochs={epochs}", f"seed={seeds}", "trainer.threads=1", *small,
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    print((sweep / "summary.md").read_text())


def run(*overrides: str) -> None:
    subprocess.run([sys.executable, "-m", "src.run", *overrides], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
