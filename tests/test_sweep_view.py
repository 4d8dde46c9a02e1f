"""What a sweep looks like: jobs named by what was swept, the swept keys as the HPARAMS columns
(checked in the event files and through a real TensorBoard server's data API, the data its
UI shows), the resolved config card, and sweep.png. Plus the rules that name the jobs."""

import json
import sys

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import open_dict

import src.run  # noqa: F401  (registers the resolvers the sweep's subdir names jobs with)
from src import errors
from src.config import sweep
from src.config.study import StudyRecord
from src.tracking import sweep_picture, sweep_tables
from tests.conftest import (
    ROOT,
    SHIPPED_WEIGHTS,
    assert_one_clear_line,
    read_session_hparams,
    read_texts,
    run_cli,
    run_python,
)
from tests.tensorboard_server import TensorBoardServer, hparams_table

# Two swept keys among eight fixed overrides, as people write sweeps.
SWEPT = ("param_groups.fc3.lr_mult=1,10", "seed=0,1")
FIXED = (
    "param_groups=fc3_boost",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=5",
    "dataset.classes=[5,6]",
    "dataset.batch_size=32",
    "optimizer.momentum=0.8",
    "optimizer.weight_decay=0",
    "scheduler=none",
)
COMPLETED = ["lr_mult=1,seed=0", "lr_mult=1,seed=1", "lr_mult=10,seed=0", "lr_mult=10,seed=1"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweeps") / "a"  # a second sweep may go beside it
    result = run_cli(
        "-m", FIXED[0], SWEPT[0], *FIXED[1:4], SWEPT[1], *FIXED[4:],
        f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    return sweep_dir, result


@pytest.mark.e2e
def test_jobs_are_named_by_the_swept_values_alone_and_keep_their_full_overrides(swept):
    sweep_dir, _ = swept
    jobs = sorted(p.parent.name for p in sweep_dir.glob("*/job.json"))
    assert jobs == COMPLETED
    row = json.loads((sweep_dir / "lr_mult=10,seed=1" / "job.json").read_text())
    assert row["overrides"] == " ".join(
        [FIXED[0], "param_groups.fc3.lr_mult=10", *FIXED[1:4], "seed=1", *FIXED[4:]]
    )
    assert row["swept"] == {"param_groups.fc3.lr_mult": 10, "seed": 1}


@pytest.mark.e2e
def test_each_runs_hparams_are_its_swept_values_as_its_name_writes_them(swept):
    sweep_dir, _ = swept
    for name in COMPLETED:
        mult, seed = (part.split("=")[1] for part in name.split(","))
        assert read_session_hparams(sweep_dir / name) == {
            "param_groups.fc3.lr_mult": mult,
            "seed": seed,
        }


@pytest.mark.e2e
def test_the_config_card_is_resolved_under_the_command_that_reruns_the_job(swept):
    sweep_dir, _ = swept
    card = read_texts(sweep_dir / "lr_mult=1,seed=0")["config"]
    given = [FIXED[0], "param_groups.fc3.lr_mult=1", *FIXED[1:3], "'dataset.classes=[5,6]'"]
    command = " ".join(["python -m src.run", *given, "seed=0", *FIXED[4:]])
    assert card.startswith(f"```\n$ {command}\n```\n\n```yaml\n")
    assert "${" not in card
    assert f"path: {SHIPPED_WEIGHTS}" in card


@pytest.fixture(scope="module")
def second_sweep(swept):
    """Another sweep beside the first, varying another key."""
    sweep_dir = swept[0].parent / "b"
    run_cli(
        "-m", "optimizer.lr=0.01,0.1", *FIXED[1:4], f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    return sweep_dir


@pytest.mark.e2e
def test_a_real_tensorboard_shows_every_sweeps_keys_a_box_per_value_and_every_runs_values(
    swept, second_sweep
):
    logdir = second_sweep.parent  # as `tensorboard --logdir outputs/multirun`
    second = ["lr=0.01", "lr=0.1"]
    runs = [f"a/{n}" for n in COMPLETED] + [f"b/{n}" for n in second]
    with TensorBoardServer(logdir, expected_runs=len(runs)) as get:
        assert sorted(get("/data/runs")) == runs
        experiment, groups = hparams_table(get)
    # the union of both sweeps' keys, each differing, each value a box of its own
    columns = {h["name"]: (h["differs"], sorted(h["domainDiscrete"])) for h in experiment["hparamInfos"]}  # fmt: skip
    assert columns == {
        "param_groups.fc3.lr_mult": (True, ["1", "10"]),
        "seed": (True, ["0", "1"]),
        "optimizer.lr": (True, ["0.01", "0.1"]),
    }
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"val/acc", "val/loss", "val/best_acc"} <= metrics
    # the Trial ID: the values first (the column cuts long names), then the sweep
    rows = {g["name"]: (g["hparams"], [x["name"] for x in g["sessions"]]) for g in groups}
    expected = {}
    for n in COMPLETED:
        mult, seed = n[8 : n.index(",")], n[-1]
        expected[f"{mult}, {seed} · a"] = (
            {"param_groups.fc3.lr_mult": mult, "seed": seed},
            [f"a/{n}"],
        )
    for n in second:
        expected[f"{n[3:]} · b"] = ({"optimizer.lr": n[3:]}, [f"b/{n}"])
    assert rows == expected


def test_without_matplotlib_the_summary_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    rows = [
        {"job": 0, "swept": {"seed": 0}, "status": "completed", "error": "", "val/acc": 0.5,
         "run_dir": "seed=0", "fixed": []}
    ]  # fmt: skip
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert sweep_picture.write(tmp_path, rows, report) == sweep_picture.NEEDS_MATPLOTLIB
    assert not (tmp_path / sweep_picture.FILE).exists()


@pytest.mark.e2e
def test_a_run_does_not_import_matplotlib():
    result = run_python("-c", "import sys, src.run; print('matplotlib' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.e2e
def test_a_grid_listing_a_value_twice_is_refused_before_any_job(tmp_path):
    result = run_cli("-m", "seed=0,1,0", f"hydra.sweep.dir={tmp_path}", check=False)
    assert_one_clear_line(result, "seed=0,1,0: the sweep lists a value twice")
    assert not list(tmp_path.glob("*/job.json"))


@pytest.mark.parametrize(
    ("overrides", "params", "expected"),
    [
        (["a=1", "b.c=1,2", "d=x,y"], None, ["b.c", "d"]),
        # config-declared sweeps first; a plain value on the command line fixes one
        (["d=1,2", "seed=3"], {"fewshot": "a,b", "seed": "0,1"}, ["fewshot", "d"]),
        (["x=tag(log, interval(1, 10))", "y=range(0,3)"], None, ["x", "y"]),
        (["seed=0"], None, []),
    ],
)
def test_swept_keys_are_the_sweep_overrides_in_the_order_given(overrides, params, expected):
    assert sweep.swept_keys(overrides, params) == expected


def test_a_job_reads_what_the_sweep_varies_from_the_root_where_the_launch_wrote_it(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        overrides = ["experiment=fewshot_digits", "seed=0,1", f"hydra.sweep.dir={tmp_path}"]
        launching = loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
        with pytest.raises(errors.GroupwiseError, match=r"swept_keys\.json: not found"):
            sweep.recorded_swept_keys(tmp_path)
        sweep.SweptKeys().on_multirun_start(config=launching)
        # As every launcher (basic, joblib, submitit) makes a job's config: from the job's own
        # overrides alone, where seed=1 reads as fixed as experiment=fewshot_digits does.
        own = ["experiment=fewshot_digits", "fewshot=scratch", "dataset.shots_per_class=5"]
        job = loader.load_sweep_config(launching, [*own, "seed=1"])
        with open_dict(job):
            job.hydra.job.num = 3  # as the launcher numbers it
    # The experiment's grid (hydra.sweeper.params) first, then the command line's sweep.
    assert sweep.recorded_swept_keys(tmp_path) == ["fewshot", "dataset.shots_per_class", "seed"]
    assert job.hydra.sweep.subdir == "fewshot=scratch,shots_per_class=5,seed=1"


def test_long_keys_are_cut_to_their_shortest_unambiguous_suffix():
    keys = ["param_groups.fc3.lr_mult", "param_groups.default.lr_mult", "optimizer.lr", "seed"]
    assert sweep.short_keys(keys) == {
        "param_groups.fc3.lr_mult": "fc3.lr_mult",
        "param_groups.default.lr_mult": "default.lr_mult",
        "optimizer.lr": "lr",
        "seed": "seed",
    }


def test_job_names_follow_the_given_order_and_number_what_a_sweeper_picks():
    overrides = ["model=lenet", "seed=1", "+pretrained.path=a/b.pt", "optimizer.lr=0.00316227766"]
    keys = ["optimizer.lr", "seed", "pretrained.path"]
    assert sweep.job_name(keys, overrides, 3, numbered=False) == (
        "lr=0.00316227766,seed=1,path=a-b.pt"  # a path makes no subdirectory
    )
    assert (
        sweep.job_name(keys, overrides, 3, numbered=True) == "job3,lr=0.003162,seed=1,path=a-b.pt"
    )
    assert sweep.job_name([], overrides, 3, numbered=False) == "job3"


def test_a_grid_is_named_by_its_values_and_a_search_numbered_whatever_the_sweeper(tmp_path):
    assert not sweep.numbered(tmp_path, sweep.BASIC_SWEEPER)
    assert sweep.numbered(
        tmp_path, "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    )
    for grid in (True, False):
        StudyRecord("sqlite://", "s", "maximize", [], grid).write(tmp_path)
        assert sweep.numbered(tmp_path, sweep.PRUNING_SWEEPER) == (not grid)
