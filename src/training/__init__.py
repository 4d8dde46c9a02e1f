"""The training loop and what it stands on: checkpoints, precision, progress, distributed."""
