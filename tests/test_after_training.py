"""After training, through the real commands: a run evaluated on its held-out test split, its
model predicting on image files, its export rebuilt without groupwise by the README's snippet;
and the figures themselves, checked against scikit-learn's."""

import json
import re
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from src import evaluate
from src import predict as predict_command
from src.config.command import compose_command
from src.data.digits import read_digits
from src.data.image_files import find_images
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD
from src.predict import predict
from src.runner import Runner
from src.training.checkpoints import MODEL, load_checkpoint
from src.training.evaluation import classification_report
from tests.conftest import (
    ROOT,
    assert_one_clear_line,
    compose_config,
    read_events,
    read_scalars,
    run_cli,
    run_python,
)
from tests.generated_data import COLOURS, write_image_folder
from tests.tables import read_csv

CLASSES = sorted(COLOURS)


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory):
    """ResNet-18 trained through the CLI on an image folder with train/, val/ and test/."""
    tmp = tmp_path_factory.mktemp("photos_run")
    root = tmp / "photos"
    for split, per_class, seed in (("train", 8, 1), ("val", 3, 2), ("test", 5, 3)):
        write_image_folder(root / split, per_class=per_class, seed=seed)
    run_dir = tmp / "run"
    run_cli(
        "model=resnet18",
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.image_size=32",
        "dataset.batch_size=8",
        "dataset.augment=false",  # two epochs from scratch: it learns the colours (val/acc ~0.9)
        "pretrained=none",
        "optimizer.lr=0.001",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
    )
    return run_dir, root


@pytest.fixture(scope="module")
def timm_run(photos_run, tmp_path_factory):
    """A tiny timm ViT (a fixed input size: its export records img_size), one epoch on the
    same images, in this process."""
    run_dir = tmp_path_factory.mktemp("timm_run")
    overrides = ("model=timm", "model.name=test_vit", "dataset=image_folder")
    cfg = compose_config(
        *overrides,
        f"dataset.root={photos_run[1]}",
        "dataset.image_size=32",
        "dataset.batch_size=8",
        "pretrained=none",
        "trainer.max_epochs=1",
    )
    Runner(cfg, run_dir).run()
    return run_dir


@pytest.fixture(scope="module")
def hf_run(photos_run, tmp_path_factory):
    """A tiny Hugging Face ViT (exported with its config.json), one epoch, in this process."""
    from tests.model_families import hf_vit_dir

    tmp = tmp_path_factory.mktemp("hf_run")
    model_dir = hf_vit_dir(tmp / "hf_vit", num_labels=len(CLASSES))
    cfg = compose_config(
        "model=hf",
        f"model.name={model_dir}",
        "dataset=image_folder",
        f"dataset.root={photos_run[1]}",
        "dataset.image_size=32",
        "dataset.batch_size=8",
        "pretrained=none",
        "trainer.max_epochs=1",
    )
    Runner(cfg, tmp / "hf").run()
    return tmp / "hf"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The default LeNet run, one epoch, in this process."""
    run_dir = tmp_path_factory.mktemp("digits_run")
    Runner(compose_config("trainer.max_epochs=1"), run_dir).run()
    return run_dir


def predict_config(run_dir, inputs, *more: str):
    """The config of `python -m src.predict run_dir=... inputs=... <more>`."""
    return compose_command("predict", [f"run_dir={run_dir}", f"inputs={inputs}", *more])


@pytest.mark.e2e
def test_evaluation_predictions_and_export_agree_on_the_test_split(photos_run, capsys):
    run_dir, root = photos_run
    # The commands' own entry points, in this process (a process each would import torch again).
    evaluate.main([f"run_dir={run_dir}"])
    printed = capsys.readouterr().out
    report = json.loads((run_dir / "eval_test.json").read_text())
    assert report["classes"] == CLASSES and report["images"] == 15 and report["split"] == "test"
    assert "top5_accuracy" not in report  # three classes
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum(axis=1).tolist() == [5, 5, 5]  # rows: the true class
    assert report["accuracy"] == pytest.approx(matrix.trace() / 15)
    for i, name in enumerate(CLASSES):
        row = report["per_class"][name]
        assert row["support"] == 5 and row["recall"] == pytest.approx(matrix[i, i] / 5)
        assert row["precision"] == pytest.approx(matrix[i, i] / max(matrix[:, i].sum(), 1))
    assert f"accuracy  {report['accuracy']:.4f}" in printed

    predict_command.main([f"run_dir={run_dir}", f"inputs={root / 'test'}"])
    rows = read_csv(run_dir / "predictions.csv")
    assert len(rows) == 15 and not any(row["error"] for row in rows)
    from_csv = np.zeros((3, 3), dtype=int)
    for row in rows:  # path: <true class>/<i>.png, relative to inputs
        from_csv[
            CLASSES.index(row["path"].split("/")[0]), CLASSES.index(row["predicted_class"])
        ] += 1
        assert row["top1_class"] == row["predicted_class"]
        probabilities = [float(row[f"top{k}_probability"]) for k in (1, 2, 3)]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
    assert from_csv.tolist() == report["confusion_matrix"]
    assert from_csv.trace() / 15 == report["accuracy"]

    # TensorBoard: the figures at the checkpoint's step, and the matrix as a picture.
    assert read_scalars(run_dir)["eval/test/accuracy"][-1][1] == pytest.approx(report["accuracy"])
    picture = read_events(run_dir).Images("eval/test/confusion_matrix")[-1]
    assert picture.width >= 400 and picture.height >= 400

    # The export: best.pt's weights under the model's own names, and what rebuilds them.
    exported = load_file(run_dir / "export" / "model.safetensors")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")[MODEL]
    assert exported.keys() == best.keys() and "fc.weight" in exported
    assert all(torch.equal(exported[k], best[k]) for k in best)
    spec = json.loads((run_dir / "export" / "model.json").read_text())
    assert spec["architecture"] == {
        "source": "torchvision",
        "name": "resnet18",
        "num_classes": 3,
        "in_channels": 3,
        "kwargs": {},
    }
    assert spec["classes"] == CLASSES
    # 32 pixels of the 48x40 images: short side resized to 37 as in validation, then cropped.
    assert {k: spec["input"][k] for k in ("channels", "size", "resize", "crop")} == {
        "channels": 3,
        "size": 32,
        "resize": 37,
        "crop": 32,
    }
    assert spec["input"]["mean"] == list(IMAGENET_MEAN) and spec["input"]["std"] == list(
        IMAGENET_STD
    )


def write_odd_digit_images(folder) -> list[str]:
    """Digits 5-9 as files of other sizes and colour modes, in nested folders, and one file
    that is not an image at all; returns the readable ones, relative to `folder`."""
    pixels, labels = read_digits()
    made = []
    for n, mode in enumerate(["L", "RGB", "RGBA", "P", "I;16", "RGB"]):
        index = int(np.flatnonzero(labels == 5 + n % 5)[n])
        gray = Image.fromarray((pixels[index] * 15.9).astype(np.uint8)).resize((24 + 9 * n, 30))
        relative = f"{'nested/' * (n % 3)}digit_{n}.{'jpg' if mode == 'RGB' else 'png'}"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        gray.convert(mode).save(folder / relative)
        made.append(relative)
    (folder / "nested" / "broken.png").write_bytes(b"\x89PNG but cut short")
    return sorted(made)


SNIPPET_EXPORT_LINE = 'export = "outputs/runs/my_run/export"'
SNIPPET_CALL_LINE = 'print(predict("photo.jpg"))'

# Runs the README's snippet where groupwise (and its config stack) cannot be imported.
CLEAN_PROCESS = """
import json, sys
for name in ("src", "hydra", "omegaconf"):
    sys.modules[name] = None  # `import src` now fails, editable install or not
try:
    import src
except ImportError:
    pass
else:
    raise SystemExit("src is importable")
snippet, jobs = sys.argv[1], json.loads(sys.argv[2])
results = {}
for export_dir, paths in jobs.items():
    namespace = {"EXPORT_DIR": export_dir}
    exec(snippet, namespace)
    results[export_dir] = {path: namespace["predict"](path) for path in paths}
print(json.dumps(results))
"""


def readme_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    (snippet,) = [block for block in blocks if "load_file(" in block]
    assert SNIPPET_EXPORT_LINE in snippet and SNIPPET_CALL_LINE in snippet
    return snippet.replace(SNIPPET_EXPORT_LINE, "export = EXPORT_DIR").replace(
        SNIPPET_CALL_LINE, ""
    )


@pytest.mark.e2e
def test_the_readme_snippet_rebuilds_exports_without_groupwise_and_predicts_the_same(
    photos_run, timm_run, hf_run, digits_run, tmp_path, capsys
):
    photos_dir, root = photos_run
    write_odd_digit_images(tmp_path / "digits")
    assert json.loads((timm_run / "export" / "model.json").read_text())["architecture"] == {
        "source": "timm",
        "name": "test_vit",
        "num_classes": len(CLASSES),
        "in_channels": 3,
        "kwargs": {"img_size": 32},
    }
    hf_export = hf_run / "export"
    assert json.loads((hf_export / "model.json").read_text())["architecture"]["source"] == (
        "transformers"
    )
    assert len(json.loads((hf_export / "config.json").read_text())["id2label"]) == len(CLASSES)
    expected, jobs = {}, {}
    runs = (
        (photos_dir, root / "test"),
        (timm_run, root / "test"),
        (hf_run, root / "test"),
        (digits_run, tmp_path / "digits"),
    )
    for run_dir, inputs in runs:
        # On the CPU, as the snippet runs: a GPU's convolutions (TF32) round otherwise.
        output = tmp_path / f"{run_dir.name}.csv"
        predict(predict_config(run_dir, inputs, "device=cpu", f"output={output}"))
        rows = {r["path"]: r for r in read_csv(output) if not r["error"]}
        jobs[str(run_dir / "export")] = [str(inputs / path) for path in rows]
        expected[str(run_dir / "export")] = {
            str(inputs / path): (r["predicted_class"], float(r["probability"]))
            for path, r in rows.items()
        }
    assert "could not be read" in capsys.readouterr().out
    assert len(expected[str(digits_run / "export")]) == 6  # every readable odd file

    result = run_python("-c", CLEAN_PROCESS, readme_snippet(), json.dumps(jobs), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rebuilt = json.loads(result.stdout)
    for export_dir, predictions in expected.items():
        for path, (name, probability) in predictions.items():
            assert rebuilt[export_dir][path][0] == name, path
            assert rebuilt[export_dir][path][1] == pytest.approx(probability, abs=2e-6), path


@pytest.mark.e2e
def test_predict_reports_an_unreadable_file_as_its_row_and_predicts_the_rest(
    digits_run, tmp_path, capsys
):
    readable = write_odd_digit_images(tmp_path / "in")
    output = tmp_path / "out" / "odd.csv"
    predict(predict_config(digits_run, tmp_path / "in", f"output={output}"))
    rows = read_csv(output)
    assert [r["path"] for r in rows if not r["error"]] == readable
    (broken,) = [r for r in rows if r["error"]]
    assert broken["path"] == "nested/broken.png" and broken["predicted_class"] == ""
    assert "cannot read the image" in broken["error"]
    assert "groupwise: warning: " in capsys.readouterr().err
    classes = {"5", "6", "7", "8", "9"}
    assert all(r["predicted_class"] in classes for r in rows if not r["error"])
    assert all(sum(float(r[f"top{k}_probability"]) for k in range(1, 6)) == pytest.approx(1, abs=1e-5) for r in rows if not r["error"])  # fmt: skip


def test_the_figures_are_scikit_learns():
    from sklearn.metrics import (
        confusion_matrix,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 7, generator=generator)
    logits[:, 6] -= 10  # class 6 is never predicted: precision 0, as scikit-learn says
    labels = torch.randint(0, 7, (200,), generator=generator)
    names = [f"c{i}" for i in range(7)]
    report = classification_report(logits, labels, names)
    predicted = logits.argmax(1).numpy()
    assert report["confusion_matrix"] == confusion_matrix(labels.numpy(), predicted).tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        labels.numpy(), predicted, labels=range(7), zero_division=0
    )
    for i, name in enumerate(names):
        row = report["per_class"][name]
        assert row["precision"] == pytest.approx(precision[i]) and row["recall"] == pytest.approx(
            recall[i]
        )
        assert row["f1"] == pytest.approx(f1[i]) and row["support"] == support[i]
    assert report["per_class"]["c6"]["precision"] == 0
    assert report["top5_accuracy"] == pytest.approx(
        top_k_accuracy_score(labels.numpy(), logits.numpy(), k=5)
    )
    assert report["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_the_confusion_picture_of_ten_classes_is_large_enough_to_read(monkeypatch):
    from matplotlib import pyplot as plt

    from src.tracking.confusion_picture import draw

    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    figures, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (figures.append(fig), close(fig)))
    counts = np.eye(10, dtype=int) * 97 + 1  # 97 of 106 right per class: a dark diagonal
    picture = draw(counts.tolist(), names, "test")
    assert picture.shape == (800, 800, 3) and picture.dtype == np.uint8
    (axes,) = figures[0].axes
    assert [t.get_text() for t in axes.get_xticklabels()] == names
    assert [t.get_text() for t in axes.get_yticklabels()] == names
    assert [t.get_text() for t in axes.texts] == [f"{c:,}" for c in counts.flatten()]
    # In the picture itself: a cell's corner (clear of its count) is dark blue on the
    # diagonal, near white off it.
    for i, j in [(0, 0), (9, 9), (4, 4), (0, 1), (9, 0), (3, 7)]:
        x, y = axes.transData.transform((j - 0.35, i - 0.35))
        r, g, b = picture[picture.shape[0] - int(y), int(x)].astype(int)
        if i == j:
            assert b > 80 and r < 60, (i, j, r, g, b)
        else:
            assert min(r, g, b) > 200, (i, j, r, g, b)


@pytest.fixture(scope="module")
def unfinished_and_untested_runs(tmp_path_factory):
    """A dry run (nothing trained), and a finished run whose data has no test split and that
    kept no best checkpoint."""
    dry, untested = tmp_path_factory.mktemp("dry"), tmp_path_factory.mktemp("untested")
    Runner(compose_config("dry_run=true"), dry).run()
    Runner(
        compose_config(
            "dataset.test_fraction=0",
            "dataset.shots_per_class=5",
            "trainer.max_epochs=1",
            "trainer.monitor=null",
        ),
        untested,
    ).run()
    return dry, untested


def refused(command, args: list[str], capsys) -> subprocess.CompletedProcess:
    """How the command's entry point ended, as the shell would see it."""
    with pytest.raises(SystemExit) as exit_:
        command.main(args)
    printed = capsys.readouterr()
    return subprocess.CompletedProcess(args, exit_.value.code, printed.out, printed.err)


@pytest.mark.e2e
def test_bad_input_is_one_clear_line_and_writes_nothing(
    digits_run, unfinished_and_untested_runs, tmp_path, capsys
):
    dry, untested = unfinished_and_untested_runs
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    existing = tmp_path / "kept.csv"
    existing.write_text("earlier results\n")
    run = f"run_dir={digits_run}"
    cases = [
        (evaluate, [], "run_dir=<a finished run> or sweep_dir=<a sweep's root>: give one"),
        (evaluate, [run, "sweep_dir=x"], "give one of them, not both"),
        (evaluate, [f"sweep_dir={tmp_path}"], "not a sweep's root"),
        (evaluate, [f"run_dir={tmp_path / 'nope'}"], "no such directory"),
        (evaluate, [f"run_dir={dry}"], "not a finished run"),
        (evaluate, [run, "split=train"], "split=train: must be one of test, val"),
        (evaluate, [run, "splt=val"], "splt: no such key; did you mean split?"),
        (evaluate, [run, "checkpoint=bets"], "has no checkpoints/bets.pt; it has best, last"),
        (
            evaluate,
            [f"run_dir={untested}", "checkpoint=last"],
            "the run's dataset has no test split",
        ),
        (evaluate, [f"run_dir={untested}", "split=val"], "no checkpoints/best.pt; it has last"),
        (
            evaluate,
            [run, "split=val", "device=gpu"],
            "device=gpu: not a device; use auto, cpu, cuda or cuda:N",
        ),
        (predict_command, [run], "inputs: required, and not set"),
        (predict_command, [run, f"inputs={tmp_path / 'empty'}"], "no image files in it"),
        (predict_command, [run, f"inputs={tmp_path / 'nope'}"], "no such file or directory"),
        (predict_command, [run, "inputs=x", f"output={existing}"], "already exists"),
        (predict_command, [run, "inputs=x", "top_k=0"], "top_k=0: must be >= 1"),
    ]
    for command, args, expected in cases:
        assert_one_clear_line(refused(command, args, capsys), expected)
    assert existing.read_text() == "earlier results\n"
    assert not list(untested.glob("eval_*")) and not list(dry.glob("eval_*"))
    assert not (digits_run / "predictions.csv").exists()
    # Without trainer.monitor there is no best checkpoint: the export holds the last one.
    origin = json.loads((untested / "export" / "model.json").read_text())["weights"]
    assert origin == {
        "file": "model.safetensors",
        "checkpoint": "checkpoints/last.pt",
        "epoch": 1,
        "weights": "model",
    }


def test_help_lists_every_option_with_its_default(capsys):
    evaluate.main(["--help"])
    printed = capsys.readouterr().out
    assert "run_dir=<a finished run>" in printed
    for line in ("  split       the split to evaluate (default test)", "(default null)"):
        assert line in printed


@pytest.mark.e2e
def test_without_matplotlib_evaluation_still_writes_its_figures(digits_run, monkeypatch, capsys):
    from src.tracking import confusion_picture

    monkeypatch.setattr(confusion_picture, "available", lambda: False)
    evaluate.main([f"run_dir={digits_run}", "split=val"])
    printed = capsys.readouterr().out
    assert 'needs matplotlib: pip install -e ".[plot]"' in printed
    report = json.loads((digits_run / "eval_val.json").read_text())
    assert report["images"] == 179 and len(report["confusion_matrix"]) == 5
    assert "eval/val/accuracy" in read_scalars(digits_run)
    assert "eval/val/confusion_matrix" not in read_events(digits_run).Tags()["images"]


def test_predicts_files_of_other_formats_are_told_in_one_warning_not_skipped_silently(
    tmp_path, capsys
):
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(inputs / "a.png")
    for name in ("b.gif", "sub/c.gif", "notes.txt", "sub/d.heic", "README", ".DS_Store"):
        (inputs / name).write_bytes(b"not an image predict reads")

    root, files = find_images(str(inputs))
    assert (root, files) == (inputs, [inputs / "a.png"])
    assert capsys.readouterr().err.splitlines() == [
        f"groupwise: warning: inputs={inputs}: 5 file(s) not read, of formats src.predict does "
        "not read (2 .gif, 1 .heic, 1 .txt, 1 no extension: README, b.gif, notes.txt, ...); "
        "convert them to PNG or JPEG to predict them"
    ]

    (inputs / "a.png").unlink()
    with pytest.raises(GroupwiseError) as refused:
        find_images(str(inputs))
    assert refused.value.problems[0].endswith(
        "; it holds 5 file(s) of other formats (2 .gif, 1 .heic, 1 .txt, 1 no extension: README, "
        "b.gif, notes.txt, ...); pass a folder holding images"
    )
    (inputs / "only").mkdir()
    Image.new("RGB", (8, 8)).save(inputs / "only" / "x.png")
    find_images(str(inputs / "only"))
    assert capsys.readouterr().err == ""  # nothing else there: nothing to tell
