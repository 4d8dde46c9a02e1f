"""Bad input through the real CLI: exit 2, one line naming the key, the value and what to do,
no traceback, nothing already written overwritten or lost. (More cases: tests/test_cli.py.)
And the reporter every command prints them with (src/errors.py)."""

import pytest
import torch

from src import errors
from src.errors import GroupwiseError
from src.training.checkpoints import MODEL, PROGRESS, load_checkpoint
from tests.conftest import assert_one_clear_line, run_cli, run_cli_here
from tests.runs import FEW_DIGITS, train_one_epoch

pytestmark = pytest.mark.e2e  # every test runs the CLI

FC3 = "param_groups=fc3_boost"


def test_hydra_full_error_shows_the_traceback(tmp_path):
    result = run_cli(
        "trainer.max_epoch=3",
        f"hydra.run.dir={tmp_path}",
        check=False,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished")
    train_one_epoch(run_dir, FC3)
    return run_dir


def snapshot(run_dir):
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def assert_nothing_overwritten_or_lost(before: dict) -> None:
    for path, content in before.items():
        now = path.read_bytes()
        # Hydra's console log is appended to, never rewritten.
        assert now.startswith(content) if path.name == "run.log" else now == content, path


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model=resnet18", "pretrained=none"],
            "resume=true: the config differs from the run being resumed",
        ),
        (
            ["param_groups.fc3.lr_mult=100"],
            "in param_groups.fc3.lr_mult: 10 -> 100; resume with the values it was started with",
        ),
        (
            ["param_groups=none"],
            "param_groups.fc3: {'pattern': '^fc3\\\\.', 'lr_mult': 10} -> (absent)",
        ),
    ],
    ids=["changed-model", "changed-multiplier", "dropped-group"],
)
def test_resume_with_a_changed_model_or_groups_is_refused_and_keeps_the_run(
    finished_run, overrides, expected
):
    before = snapshot(finished_run)
    # Its own process: each attempt's Hydra record is named by the command's launch time.
    # The run's own groups, unless the case changes them (a key given twice is refused).
    groups = [] if any(o.startswith("param_groups=") for o in overrides) else [FC3]
    result = run_cli(
        *FEW_DIGITS,
        *groups,
        *overrides,
        "trainer.max_epochs=2",
        "resume=true",
        f"hydra.run.dir={finished_run}",
        check=False,
    )
    assert_one_clear_line(result, expected)
    if overrides[0].startswith("model="):
        assert (
            "model._target_: 'src.models.lenet.LeNetSource' -> 'src.models.torchvision_models.TorchvisionSource'"
            in result.stderr
        )
    assert_nothing_overwritten_or_lost(before)


def test_resume_from_a_damaged_checkpoint_is_one_clear_line(tmp_path, finished_run):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    checkpoint = (finished_run / "checkpoints/last.pt").read_bytes()
    (run_dir / "checkpoints/last.pt").write_bytes(checkpoint[: len(checkpoint) // 3])
    result = run_cli_here(
        *FEW_DIGITS,
        "param_groups=fc3_boost",
        "resume=true",
        f"hydra.run.dir={run_dir}",
        check=False,
    )
    assert_one_clear_line(result, "is not a readable checkpoint")


def test_a_non_finite_loss_stops_with_the_step_and_every_lr_and_keeps_the_last_checkpoint(
    tmp_path,
):
    # lr x 1e6 from epoch 2 on: epoch 1 trains and checkpoints, epoch 2 diverges.
    result = run_cli_here(
        *FEW_DIGITS,
        "param_groups=fc3_boost",
        "scheduler.step_size=1",
        "scheduler.gamma=1e6",
        "trainer.max_epochs=2",
        "trainer.checkpoint_every_n_steps=null",
        f"hydra.run.dir={tmp_path}",
        check=False,
    )
    assert_one_clear_line(result, "train/loss is not finite (nan or inf) at step ")
    assert "(epoch 2); lr per group: fc3=1e+04, default=1e+03; a too-large lr" in result.stderr
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert state[PROGRESS]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state[MODEL].values())
    assert not (tmp_path / "metrics.json").exists()


def test_a_non_finite_loss_before_any_checkpoint_claims_none(tmp_path):
    result = run_cli_here(
        *FEW_DIGITS, "optimizer.lr=1000", f"hydra.run.dir={tmp_path}", check=False
    )
    assert_one_clear_line(result, "train/loss is not finite (nan or inf) at step ")
    assert "no checkpoint had been written yet" in result.stderr
    assert "was kept" not in result.stderr
    assert not (tmp_path / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "run.log").exists()  # a run that started keeps what it made


def make_image_folder(root, broken: bool = False):
    from PIL import Image

    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(root / label / f"{i}.png")
    if broken:
        (root / "dog" / "9.png").write_bytes(b"not an image")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: None, "no such directory"),
        (lambda root: root.mkdir(), "expected one folder per class holding images"),
        (lambda root: make_image_folder(root, broken=True), "9.png"),
    ],
    ids=["missing-root", "empty-folder", "unreadable-image"],
)
def test_bad_image_folders_are_one_clear_line(tmp_path, make, expected):
    root = tmp_path / "images"
    make(root)
    result = run_cli_here(
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.batch_size=2",
        "pretrained=none",
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert_one_clear_line(result, f"dataset.root={root}")
    assert expected in result.stderr


def test_an_unreadable_image_read_in_a_loader_worker_is_one_clear_line_too(tmp_path):
    root = tmp_path / "images"
    make_image_folder(root, broken=True)
    result = run_cli(
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.batch_size=2",
        "dataset.num_workers=1",
        "pretrained=none",
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert_one_clear_line(result, f"dataset.root={root}: cannot read the image")
    assert "9.png" in result.stderr


def test_the_users_mistake_is_one_line_per_problem_and_exit_2(monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_:
        errors.exit_if_user_mistake(GroupwiseError("a=1: too small", "b=x: not a number"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "groupwise: error: a=1: too small",
        "groupwise: error: b=x: not a number",
    ]


def test_a_bug_or_hydra_full_error_is_left_to_raise_with_its_traceback(monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    errors.exit_if_user_mistake(ValueError("a bug"))  # returns: the caller raises it
    errors.report(ValueError("a bug"))  # a failed sweep job: printed, the sweep goes on
    assert capsys.readouterr().err.startswith("ValueError: a bug")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    errors.exit_if_user_mistake(GroupwiseError("a=1: too small"))
    errors.report(GroupwiseError("a=1: too small"))
    assert "GroupwiseError: a=1: too small" in capsys.readouterr().err


def test_an_error_from_a_loader_worker_is_reported_in_its_own_words(capsys):
    wrapped = (
        "Caught GroupwiseError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n"
        '  File "image_folder.py", line 9, in __getitem__\n'
        "src.errors.GroupwiseError: dataset.root=x: cannot read the image x/9.png\n"
    )
    errors.report(GroupwiseError(wrapped))
    assert capsys.readouterr().err == (
        "groupwise: error: dataset.root=x: cannot read the image x/9.png\n"
    )
