"""A pruning sweep (`hydra/sweeper=pruning`): its jobs are trials of an Optuna study in a real
storage file, judged against the jobs of their own seed each epoch; a pruned job is `pruned`
in every file and in TensorBoard; a sweep killed mid-way is continued by the same command."""

import os
import signal
import subprocess
import sys
import time

import pytest

from src.config.same_seed_pruner import REPLICATE, SameSeedPruner
from tests.conftest import ROOT, read_scalars, read_texts, run_cli
from tests.tables import read_csv

optuna = pytest.importorskip("optuna", minversion="4")  # SQLite beside SQLAlchemy 2

MULTS = ("100", "30", "1", "0.1")  # the good first: the later ones have something to trail
GRID = [
    "hydra/sweeper=pruning", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
    "param_groups=fc3_boost",
    f"param_groups.fc3.lr_mult={','.join(MULTS)}", "seed=0,1", "trainer.max_epochs=4",
    "dataset.shots_per_class=8", "dataset.batch_size=8",
]  # fmt: skip


def trial_with(study, seed: int, curve: list[float], state=None):
    trial = study.ask()
    trial.set_user_attr(REPLICATE, [f"seed={seed}"])
    for epoch, value in enumerate(curve, start=1):
        trial.report(value, epoch)
    if state is not None:
        study.tell(trial, curve[-1] if state == "complete" else None, state=state_of(state))
    return trial


def state_of(name: str):
    return {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}[
        name
    ]


def test_a_trial_is_judged_against_its_own_seeds_trials_at_the_same_epoch():
    study = optuna.create_study(direction="maximize", pruner=SameSeedPruner(1, 2, 0.5))
    for curve in ([0.5, 0.8], [0.6, 0.9]):  # seed 0: good
        trial_with(study, 0, curve, "complete")
    for curve in ([0.2, 0.4], [0.3, 0.5]):  # seed 1: an unlucky split
        trial_with(study, 1, curve, "complete")
    # 0.4 at epoch 1: behind seed 0's both, ahead of seed 1's both
    assert trial_with(study, 0, [0.4]).should_prune()
    assert not trial_with(study, 1, [0.4]).should_prune()
    # at epoch 2, compared with epoch 2's figures (0.8, 0.9), not epoch 1's (0.5, 0.6)
    assert trial_with(study, 0, [0.7, 0.7]).should_prune()
    assert not trial_with(study, 0, [0.4, 0.95]).should_prune()
    # a third of them goes on: with 5 others, the best 2 of 6
    thirds = optuna.create_study(direction="maximize", pruner=SameSeedPruner(1, 2, 0.34))
    for value in (0.1, 0.2, 0.3, 0.4, 0.5):
        trial_with(thirds, 0, [value], "complete")
    assert not trial_with(thirds, 0, [0.45]).should_prune()
    assert trial_with(thirds, 0, [0.35]).should_prune()
    # too few of its seed: seed 2 has none to trail
    assert not trial_with(study, 2, [0.0]).should_prune()
    # minimize: the lower the better
    losses = optuna.create_study(direction="minimize", pruner=SameSeedPruner(1, 2, 0.5))
    for curve in ([0.5], [0.6]):
        trial_with(losses, 0, curve, "complete")
    assert trial_with(losses, 0, [0.9]).should_prune()
    assert not trial_with(losses, 0, [0.4]).should_prune()


def job_files(sweep_dir) -> int:
    return len(list(sweep_dir.glob("*/job.json")))


@pytest.mark.e2e
def test_a_pruned_sweep_in_parallel_jobs_killed_and_continued_ends_with_every_job_accounted(
    tmp_path,
):
    sweep_dir = tmp_path / "sweep"
    args = [*GRID, f"hydra.sweep.dir={sweep_dir}"]
    killed = subprocess.Popen(
        [sys.executable, "-m", "src.run", "-m", *args], cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while job_files(sweep_dir) < 4 and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)  # the sweeper and its joblib workers, mid-batch
    killed.wait()
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    study = optuna.load_study(study_name="sweep", storage=storage)
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert running, "the sweep ended before it was killed: nothing to continue"
    assert not (sweep_dir / "summary.csv").exists()

    result = run_cli("-m", *args)  # the same command: continues the sweep
    study = optuna.load_study(study_name="sweep", storage=storage)
    ended = {
        t.number: t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    }
    # every grid point ended once
    points = {
        tuple(o for o in t.user_attrs["overrides"] if o.startswith(("param_groups.fc3", "seed")))
        for t in ended.values()
    }
    assert len(ended) == len(points) == 8
    # a trial the kill left running: told as its job ended if it had (its batch had not), or
    # failed, its grid point run again
    failed = {t.number for t in study.get_trials(states=(optuna.trial.TrialState.FAIL,))}
    assert failed <= {t.number for t in running}
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    rows = read_csv(sweep_dir / "summary.csv")
    assert sorted(int(r["job"]) for r in rows) == sorted(ended)
    statuses = {r["status"] for r in rows}
    assert statuses <= {"completed", "pruned"} and "pruned" in statuses
    for row in rows:
        trial = ended[int(row["job"])]
        job = sweep_dir / row["run_dir"]
        scalars = read_scalars(job)
        if row["status"] == "pruned":
            assert trial.state == optuna.trial.TrialState.PRUNED
            epoch = max(trial.intermediate_values)  # the epoch the pruner stopped it at
            assert int(row["epochs"]) == epoch < 4
            assert scalars["sweep/pruned_at_epoch"][-1][1] == epoch
            assert read_texts(job)["status"].startswith(f"pruned at epoch {epoch}")
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE and row["epochs"] == "4"
            assert trial.value == pytest.approx(float(row["val/acc@best"]))
            assert "sweep/pruned_at_epoch" not in scalars
    # the answer weighs only the settings that reached the end, and says what was spent
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.strip() in result.stdout
    pruned_settings = {r["param_groups.fc3.lr_mult"] for r in rows if r["status"] == "pruned"}
    for setting in read_csv(sweep_dir / "settings.csv"):
        ranked = setting["param_groups.fc3.lr_mult"] not in pruned_settings
        assert (setting["rank"] != "pruned") == ranked
    spent = sum(int(r["epochs"]) for r in rows)
    assert f"epochs trained: {spent} of the 32 " in markdown
    assert spent < 32


@pytest.mark.e2e
def test_a_search_continued_with_more_trials_runs_only_the_new_ones_with_new_values(tmp_path):
    search = ["hparams_search=optuna_lr_mult", "trainer.max_epochs=1", *GRID[-2:]]
    run_cli("-m", *search, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}")
    first = sorted(p.name for p in tmp_path.glob("job*"))
    run_cli("-m", *search, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path}")
    jobs = sorted(p.name for p in tmp_path.glob("job*"))
    assert len(first) == 2 and jobs[:2] == first and jobs[2].startswith("job2,")
    study = optuna.load_study(study_name="lr_mult", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    picked = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(picked)) == 3  # the continued sampler did not repeat the first trials
    assert len(read_csv(tmp_path / "summary.csv")) == 3
