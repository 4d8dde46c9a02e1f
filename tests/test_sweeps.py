"""Multiruns through the real CLI: the sweep summary (a failing job included), each job's hparams
in its own run, and the launcher and sweeper plugins."""

import json
import math
import pickle
import statistics
import sys
import types
from pathlib import Path

import pytest

from src.errors import GroupwiseError
from src.tracking.sweep_summary import FailedJob
from tests.conftest import compose_config, read_scalars, read_session_hparams, run_cli
from tests.tables import read_csv


@pytest.mark.e2e
def test_a_failing_job_keeps_its_row_the_others_run_and_the_command_fails(tmp_path):
    """A job that fails once it runs (an image size the model cannot take, which only building
    the model's data tells; a bad value is refused before the sweep starts, below)."""
    result = run_cli(
        "-m",
        "param_groups=fc3_boost",
        "param_groups.fc3.lr_mult=1,10",
        "dataset.image_size=32,4",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
        check=False,
    )
    assert result.returncode == 1
    assert "groupwise: error: 2 of 4 jobs failed" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

    rows = read_csv(tmp_path / "summary.csv")
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0", "completed"),
        ("1", "failed"),
        ("2", "completed"),
        ("3", "failed"),
    ]
    assert rows[1]["overrides"] == (
        "param_groups=fc3_boost param_groups.fc3.lr_mult=1 dataset.image_size=4 "
        "trainer.max_epochs=1"
    )
    assert rows[1]["error"].startswith("dataset.image_size=4: the model cannot take")
    assert rows[1]["val/acc"] == ""
    for row, mult in ((rows[0], 1), (rows[2], 10)):
        # what the sweep varies, not its fixed overrides
        job_dir = tmp_path / f"lr_mult={mult},image_size=32"
        metrics = json.loads((job_dir / "metrics.json").read_text())
        assert float(row["val/acc"]) == pytest.approx(metrics["val/acc"])
        assert float(row["val/loss"]) == pytest.approx(metrics["val/loss"])
        assert float(row["val/best_acc"]) == pytest.approx(metrics["best_val_acc"])
        assert row["epochs"] == "1" and float(row["wall_time_s"]) > 0 and row["error"] == ""
        # each job's HPARAMS row: its swept values, beside its own scalars
        assert read_session_hparams(job_dir) == {
            "param_groups.fc3.lr_mult": str(mult),
            "dataset.image_size": "32",
        }
        assert "val/best_acc" in read_scalars(job_dir)

    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.strip() in result.stdout
    failed_line = f"| 1 | 1 | 4 | `{tmp_path / 'lr_mult=1,image_size=4'}` | failed |"
    [row_line] = [line for line in markdown.splitlines() if line.startswith(failed_line)]
    assert "| dataset.image_size=4: the model cannot take" in row_line


@pytest.mark.e2e
def test_every_job_of_a_sweep_is_checked_before_the_first_starts(tmp_path):
    """A grid whose later jobs have bad values: every problem of every job, each naming its job
    (Hydra's number and the swept values, as Hydra writes them: `False`), exit 2, before any
    job runs: no sweep dir made."""
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "optimizer.lr=0.1,-1",
        "optimizer=sgd,nope",
        "trainer.channels_last=false,2",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={sweep_dir}",
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lr = "optimizer.lr=-1: must be a finite number >= 0"
    nope = "optimizer=nope: no such optimizer config; choose one of adam, adamw, rmsprop, sgd"
    loose = "trainer.channels_last=2: must be true or false"
    expected = [
        (1, "optimizer.lr=0.1 optimizer=sgd trainer.channels_last=2", loose),
        (2, "optimizer.lr=0.1 optimizer=nope trainer.channels_last=False", nope),
        (3, "optimizer.lr=0.1 optimizer=nope trainer.channels_last=2", nope),
        (4, "optimizer.lr=-1 optimizer=sgd trainer.channels_last=False", lr),
        (5, "optimizer.lr=-1 optimizer=sgd trainer.channels_last=2", loose),
        (5, "optimizer.lr=-1 optimizer=sgd trainer.channels_last=2", lr),
        (6, "optimizer.lr=-1 optimizer=nope trainer.channels_last=False", nope),
        (7, "optimizer.lr=-1 optimizer=nope trainer.channels_last=2", nope),
    ]
    lines = result.stderr.splitlines()
    assert len(lines) == len(expected), result.stderr
    for line, (num, overrides, problem) in zip(lines, expected, strict=True):
        assert line.startswith(f"groupwise: error: job #{num} ({overrides}): {problem}"), line
    assert not sweep_dir.exists()
    assert "Launching" not in result.stdout + result.stderr


@pytest.mark.e2e
def test_a_problem_every_job_of_a_sweep_shares_is_told_once(tmp_path):
    result = run_cli(
        "-m", "seed=0,1,2", "optimizer.lr=-1", f"hydra.sweep.dir={tmp_path / 's'}", check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "groupwise: error: optimizer.lr=-1: must be a finite number >= 0 (the base value every "
        "group's multiplier scales)"
    ]
    assert not (tmp_path / "s").exists()


def test_a_failed_jobs_result_is_nan_to_sweepers_and_keeps_its_error_across_processes():
    failed = FailedJob.of(GroupwiseError("a.b=1: must be >= 2", "c: unknown key"))
    back = pickle.loads(pickle.dumps(failed))  # as joblib and submitit send results back
    assert isinstance(back, FailedJob) and back.error == "a.b=1: must be >= 2; c: unknown key"
    assert math.isnan(float(back))  # optuna records a NaN value as a failed trial
    assert FailedJob.of(KeyError("x")).error == "KeyError: 'x'"


@pytest.mark.e2e
@pytest.mark.machine_threads
def test_joblib_runs_jobs_in_parallel_processes_sharing_the_cores(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    joblib = pytest.importorskip("joblib")
    run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "seed=0,1",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    rows = read_csv(tmp_path / "summary.csv")
    assert [r["status"] for r in rows] == ["completed", "completed"]
    # each worker process named its job, and its HPARAMS row, by what the launch saw swept
    assert [r["run_dir"] for r in rows] == [str(tmp_path / "seed=0"), str(tmp_path / "seed=1")]
    assert read_session_hparams(tmp_path / "seed=1") == {"seed": "1"}
    # 2 jobs at once: each job's torch gets its share of the cores, not all of them
    assert {r["torch_threads"] for r in rows} == {str(max(1, joblib.cpu_count() // 2))}


@pytest.mark.e2e
def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        "param_groups=fc3_boost",
        "param_groups.fc3.lr_mult=choice(3)",  # a sweep of one value
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert [r["status"] for r in read_csv(tmp_path / "summary.csv")] == ["completed"]
    assert list((tmp_path / ".submitit").glob("*/*_result.pkl"))
    # submitit's process named the job, and its HPARAMS row, by what the launch saw swept
    assert "lr/fc3" in read_scalars(tmp_path / "lr_mult=3")
    assert read_session_hparams(tmp_path / "lr_mult=3") == {"param_groups.fc3.lr_mult": "3"}


@pytest.mark.e2e
def test_optuna_searches_the_base_lr_and_the_head_multiplier_for_val_acc(tmp_path):
    optuna = pytest.importorskip("optuna", minversion="4")
    run_cli(
        "-m",
        "hparams_search=optuna_lr_mult",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    rows = read_csv(tmp_path / "summary.csv")
    assert len(rows) == 3 and {r["status"] for r in rows} == {"completed"}
    # the study, in its storage beside the jobs: a trial per job, told its val/acc at best.pt
    study = optuna.load_study(study_name="lr_mult", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.best_value == pytest.approx(max(float(r["val/acc@best"]) for r in rows))
    best = study.best_params
    assert 1e-4 <= best["optimizer.lr"] <= 1e-1 and 1 <= best["param_groups.fc3.lr_mult"] <= 100
    # every trial's sampled values are numbers in its HPARAMS row
    runs = sorted(p.parent for p in tmp_path.glob("*/metrics.json"))
    trials = [read_session_hparams(run) for run in runs]
    assert len({t["optimizer.lr"] for t in trials}) == 3
    assert all(isinstance(t["param_groups.fc3.lr_mult"], float) for t in trials)
    # named by the search space's keys (short forms), numbered: optuna may pick a value twice
    for n, (run, trial) in enumerate(zip(runs, trials, strict=True)):
        lr, mult = trial["optimizer.lr"], trial["param_groups.fc3.lr_mult"]
        assert run.name == f"job{n},lr={lr:.4g},lr_mult={mult:.4g}"


@pytest.mark.parametrize(
    ("start", "loads_pretrained", "excluded", "fc3_mult"),
    [
        ("scratch", False, [], None),
        ("pretrained", True, [], None),
        ("fc3_x1", True, ["head"], 1),
        ("fc3_x100", True, ["head"], 100),
    ],
)
def test_fewshot_starts_compose_as_the_study_describes(
    make_cfg, start, loads_pretrained, excluded, fc3_mult
):
    cfg = make_cfg("experiment=fewshot_digits", f"fewshot={start}")
    assert (cfg.pretrained.path is not None) == loads_pretrained
    assert list(cfg.pretrained.exclude) == excluded
    assert cfg.param_groups.get("fc3", {}).get("lr_mult") == fc3_mult


@pytest.mark.e2e
def test_fewshot_study_prints_mean_and_std_per_start_and_shot_count(tmp_path):
    result = run_cli(
        "-m",
        "experiment=fewshot_digits",
        "fewshot=scratch,fc3_x10",  # the command line narrows the study's own sweep
        "dataset.shots_per_class=5",
        "seed=0,1",
        "trainer.max_epochs=6",
        f"hydra.sweep.dir={tmp_path}",
    )
    rows = read_csv(tmp_path / "summary.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}
    runs = [Path(r["run_dir"]) for r in rows]
    table = (tmp_path / "fewshot_table.md").read_text()
    assert table.strip() in result.stdout
    assert "| start | 5 shots, epoch 5 | 5 shots, epoch 6 |" in table
    line = next(line for line in table.splitlines() if "fresh fc3 x10 |" in line)
    cells = []
    for epoch in (5, 6):
        accs = [
            dict(read_scalars(run)["val/acc"])[epoch * 2]  # 5 shots x 5 digits: 2 steps/epoch
            for run in runs
            if "fewshot=fc3_x10" in str(run)
        ]
        cells.append(f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}")
    assert line == f"| pretrained body + fresh fc3 x10 | {cells[0]} | {cells[1]} |"
    assert "| pretrained body + fresh fc3 x3 | n/a | n/a |" in table


def test_slurm_preset_asks_for_one_gpu_per_job_on_the_partition_given():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_config("hydra/launcher=slurm", "hydra.launcher.partition=gpu", with_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu"
    assert (launcher.gpus_per_node, launcher.timeout_min) == (1, 60)
    assert launcher.cpus_per_task == 8


def test_the_pruning_sweeper_refuses_an_optuna_older_than_4_in_one_line(monkeypatch, capsys):
    from src.config import study

    monkeypatch.setitem(sys.modules, "optuna", types.SimpleNamespace(__version__="2.10.1"))
    with pytest.raises(SystemExit) as stopped:
        study.require_optuna()
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("groupwise: error: hydra/sweeper=pruning needs optuna >= 4: this is")
