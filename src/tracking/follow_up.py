"""What a run tells its user of where it went: its run dir as training starts, and at the end
the commands that read it (evaluate, predict, TensorBoard), ready to paste."""

import shlex
from pathlib import Path


def starting(run_dir: Path) -> str:
    return f"run dir: {run_dir}"


def finished(run_dir: Path, has_test_split: bool, has_best: bool) -> str:
    """The run dir and the follow-up commands, with the options this run needs: its data
    without a test split is evaluated on val, and without checkpoints/best.pt on last."""
    where = shlex.quote(str(run_dir))
    options = ("" if has_test_split else " split=val") + ("" if has_best else " checkpoint=last")
    checkpoint = "" if has_best else " checkpoint=last"
    return "\n".join(
        [
            f"finished: {run_dir}",
            f"  evaluate:    python -m src.evaluate run_dir={where}{options}",
            f"  predict:     python -m src.predict run_dir={where}{checkpoint} inputs=<image or folder>",
            f"  tensorboard: tensorboard --logdir {where}",
        ]
    )
