"""`python -m src.predict run_dir=<a finished run> inputs=<an image file or a folder>`: the run's
model on image files of any size and colour mode (subfolders too), in batches.

Writes `predictions.csv` (into the run dir unless `output=` says where; an existing file is
never overwritten): per file its `path` (relative to `inputs`), `predicted_class`,
`probability`, the top-k classes with their probabilities, and `error`, set for a file that
could not be read (the others are predicted all the same). Images are prepared as
export/model.json describes, as the README's stand-alone snippet prepares them.
"""

import csv
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from src import stopping
from src.config.command import run_command, written
from src.errors import GroupwiseError, warn

OUTPUT_NAME = "predictions.csv"


def predict(cfg: DictConfig) -> Path:
    with stopping.deferred():  # torch: imported once the command runs, so `--help` is fast
        from src import trained_run

    with trained_run.in_use(cfg.run_dir, writes=not cfg.output):
        return _predict(cfg, trained_run.open_run(cfg.run_dir, cfg.checkpoint))


def _predict(cfg: DictConfig, run) -> Path:
    from torch.utils.data import DataLoader

    from src.data.image_files import ImageFiles, find_images
    from src.data.transforms import inference_transform

    output = Path(cfg.output).expanduser() if cfg.output else run.run_dir / OUTPUT_NAME
    if output.exists():
        raise GroupwiseError(
            f"output={output}: already exists (nothing was overwritten); pass another "
            "output=<file>.csv, or move that one away"
        )
    description = run.export_description()
    root, files = find_images(cfg.inputs)
    architecture, image_input = description["architecture"], description["input"]
    device = run.device(cfg.device)
    print(run.device_line(device, cfg.threads))
    model = run.model(architecture["in_channels"], architecture["num_classes"], device)
    images = ImageFiles(files, image_input["channels"], inference_transform(image_input))
    loader = DataLoader(
        images,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        worker_init_fn=stopping.worker_leaves_signals_to_main,
    )
    partial = output.with_name(output.name + ".tmp")  # renamed into place once complete
    try:
        with written(output, "pass output=<file>.csv where there is room"):
            output.parent.mkdir(parents=True, exist_ok=True)
            k = min(cfg.top_k, len(description["classes"]))
            rows = _rows(run, model, loader, device, description["classes"], k)
            unreadable = _write_rows(partial, rows, files, root, k)
    except BaseException:  # Ctrl-C, a full disk: no half-written file is left
        partial.unlink(missing_ok=True)
        raise
    if unreadable == len(files):  # nothing predicted: no file to keep
        partial.unlink()
        raise GroupwiseError(
            f"inputs={cfg.inputs}: none of its {len(files)} file(s) could be read as an image "
            "(see the warnings above); nothing was written; pass image files"
        )
    os.replace(partial, output)
    failed = f"; {unreadable} could not be read (their error column says why)" if unreadable else ""
    print(f"predicted {len(files) - unreadable} of {len(files)} images{failed}: {output}")
    return output


def _rows(run, model, loader, device, classes: list[str], k: int):
    """Per batch, per file: its top `k` classes and probabilities, flat, and its error (the
    classes empty when it is set)."""
    from src.training.evaluation import outputs

    for logits, errors in outputs(model, loader, device, run.autocast(device)):
        top = logits.softmax(1).topk(k, dim=1)
        yield [
            (
                [""] * (2 * k)
                if error
                else [
                    value
                    for p, i in zip(top.values[row], top.indices[row], strict=True)
                    for value in (classes[i], f"{p:.6f}")
                ],
                error,
            )
            for row, error in enumerate(errors)
        ]


def _write_rows(partial: Path, rows, files: list[Path], root: Path, k: int) -> int:
    """predictions.csv into `partial`, a row per file; returns how many could not be read."""
    from tqdm import tqdm

    from src.training import progress

    unreadable, done = 0, 0
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_header(k))
        bar = tqdm(total=len(files), unit="img", desc="predict", disable=not progress.wanted())
        for batch in rows:
            for file, (ranked, error) in zip(files[done:], batch, strict=False):
                if error:
                    unreadable += 1
                    warn(f"{file}: {error}")
                writer.writerow([file.relative_to(root).as_posix(), *ranked[:2], *ranked, error])
            done += len(batch)
            bar.update(len(batch))
        bar.close()
    return unreadable


def _header(k: int) -> list[str]:
    ranked = [f"top{i}_{what}" for i in range(1, k + 1) for what in ("class", "probability")]
    return ["path", "predicted_class", "probability", *ranked, "error"]


def main(args: list[str]) -> None:
    run_command("predict", __doc__, predict, args)


if __name__ == "__main__":
    main(sys.argv[1:])
