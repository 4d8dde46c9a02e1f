"""The answer of a sweep at its root: settings.csv (seeds pooled, best first), summary.csv (one
row per job), summary.md (the winner, and a verdict on its lead over the runner-up), sweep.png;
then `python -m src.evaluate sweep_dir=...` adds the test split to all of them."""

import json
import math
import statistics

import numpy as np
import pytest

from src.config.command import compose_command, quote_path
from src.tracking import sweep_picture, sweep_stats, sweep_tables
from src.tracking.sweep_stats import Setting
from src.tracking.sweep_summary import gather_rows
from tests.conftest import compose_config, read_scalars, run_cli, run_python
from tests.tables import read_csv
from tests.tensorboard_server import TensorBoardServer, hparams_table

MULTS = (1, 10, 100)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep")
    result = run_cli(
        "-m", "param_groups=fc3_boost", "param_groups.fc3.lr_mult=1,10,100", "seed=0,1",
        "trainer.max_epochs=1", "dataset.classes=[5,6,7]", f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    return sweep_dir, result


def job_metrics(sweep_dir, mult, seed):
    return json.loads((sweep_dir / f"lr_mult={mult},seed={seed}" / "metrics.json").read_text())


@pytest.mark.e2e
def test_settings_pool_the_seeds_best_first_with_the_jobs_own_figures(sweep):
    sweep_dir, _ = sweep
    rows = read_csv(sweep_dir / "settings.csv")
    assert len(rows) == 3
    means = []
    for row in rows:
        mult = int(row["param_groups.fc3.lr_mult"])
        per_seed = [job_metrics(sweep_dir, mult, seed) for seed in SEEDS]
        assert row["n"] == "2" and row["failed"] == "0"
        for ours, theirs in (("val/acc", "val/acc"), ("val/best_acc", "best_val_acc"), ("val/loss", "val/loss")):  # fmt: skip
            values = [m[theirs] for m in per_seed]
            assert float(row[f"{ours}_mean"]) == pytest.approx(statistics.mean(values))
            assert float(row[f"{ours}_std"]) == pytest.approx(statistics.stdev(values))
        means.append(float(row["val/acc_mean"]))
    assert means == sorted(means, reverse=True)  # best first
    assert [r["rank"] for r in rows] == ["1", "2", "3"]


@pytest.mark.e2e
def test_summary_csv_has_a_row_per_job_its_swept_values_and_its_dir_as_written(sweep):
    sweep_dir, _ = sweep
    rows = read_csv(sweep_dir / "summary.csv")
    assert [(r["param_groups.fc3.lr_mult"], r["seed"]) for r in rows] == [
        (str(m), str(s)) for m in MULTS for s in SEEDS
    ]
    for row in rows:
        assert row["run_dir"] == str(
            sweep_dir / f"lr_mult={row['param_groups.fc3.lr_mult']},seed={row['seed']}"
        )
        assert row["status"] == "completed"
        metrics = job_metrics(sweep_dir, row["param_groups.fc3.lr_mult"], row["seed"])
        assert float(row["val/acc"]) == pytest.approx(metrics["val/acc"])


@pytest.mark.e2e
def test_summary_md_names_a_winner_only_beyond_seed_noise_and_weighs_the_lead(sweep):
    sweep_dir, result = sweep
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.strip() in result.stdout
    best = read_csv(sweep_dir / "settings.csv")[0]
    second = read_csv(sweep_dir / "settings.csv")[1]
    verdict = next(line for line in markdown.splitlines() if line.startswith("**val/acc@best**"))
    lead = float(best["val/acc@best_mean"]) - float(second["val/acc@best_mean"])
    if lead == 0:
        assert "tie at" in verdict
    else:
        assert f"lr_mult={best['param_groups.fc3.lr_mult']} leads" in verdict
        assert f"by {lead:+.4f}" in verdict and "paired t over 2 shared seeds" in verdict
    beyond = "beyond seed noise" in verdict
    assert beyond != ("within seed noise" in verdict or "tie at" in verdict)
    winner_lines = [line for line in markdown.splitlines() if line.startswith("| **winner**")]
    if beyond:  # the answer, the table and the jobs' stars name the best setting
        mult = best["param_groups.fc3.lr_mult"]
        assert len(winner_lines) == 1 and winner_lines[0].startswith(f"| **winner** | {mult} | 2 |")
        assert f"**winner: lr_mult={best['param_groups.fc3.lr_mult']}**" in markdown
    else:
        assert winner_lines == [] and "★" not in markdown
        assert "**no clear winner**: " in markdown
    assert "best first by mean val/acc@best" in markdown
    assert (
        "fixed: `param_groups=fc3_boost trainer.max_epochs=1 dataset.classes=[5,6,7]`" in markdown
    )


@pytest.mark.e2e
def test_the_sweep_picture_plots_each_seed_each_settings_mean_and_spread_and_stars_a_winner(
    sweep, tmp_path, monkeypatch
):
    sweep_dir, result = sweep
    assert f"sweep picture: {sweep_dir / 'sweep.png'}" in result.stdout
    image_module = pytest.importorskip("matplotlib.image")
    from matplotlib.figure import Figure

    written = image_module.imread(sweep_dir / "sweep.png")
    assert written.shape[:2] == (400, 500)  # one panel (val/acc), 5 x 4 inches at 100 dpi
    assert red_pixels(written) == 0  # no job failed: no failed-job marks
    won = "**winner: " in (sweep_dir / "summary.md").read_text()
    assert (orange_pixels(written) > 50) == won  # the winner's star, when there is one
    # Drawn again in this process from the sweep's jobs, the figure kept to read what it
    # plots: the same pixels as the file the sweep wrote.
    figures, savefig = [], Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda fig, *a, **k: (figures.append(fig), savefig(fig, *a, **k))
    )
    rows = gather_rows(sweep_dir)
    sweep_picture.write(tmp_path, rows, sweep_tables.write(tmp_path, rows, ["seed"]))
    assert (image_module.imread(tmp_path / "sweep.png") == written).all()
    (figure,) = figures
    (ax,) = figure.axes
    settings = read_csv(sweep_dir / "settings.csv")
    means = {int(s["param_groups.fc3.lr_mult"]): float(s["val/acc@best_mean"]) for s in settings}
    winner = int(settings[0]["param_groups.fc3.lr_mult"]) if won else None
    star = [line for line in ax.lines if line.get_marker() == "*"]
    assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in star] == (
        [(winner, pytest.approx(means[winner]))] if won else []
    )
    assert all(line.get_color() == "tab:orange" for line in star)
    squares = sorted(
        (line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "s"
    )
    assert squares == [(m, pytest.approx(means[m])) for m in sorted(means) if m != winner]
    # each setting's error bar spans its mean +- the std over seeds
    for bar in ax.containers:
        (x,), (mean,) = bar.lines[0].get_xdata(), bar.lines[0].get_ydata()
        (setting,) = [s for s in settings if int(s["param_groups.fc3.lr_mult"]) == x]
        assert mean == pytest.approx(means[x])
        std = float(setting["val/acc@best_std"])
        caps = sorted(y for cap in bar.lines[1] for y in cap.get_ydata())
        assert caps == pytest.approx([mean - std, mean + std])
    assert len(ax.containers) == len(MULTS)
    # a faint line per seed through its jobs' val/acc, across the settings
    jobs = read_csv(sweep_dir / "summary.csv")
    seeds = [
        list(zip(line.get_xdata(), line.get_ydata(), strict=True))
        for line in ax.lines
        if line.get_marker() == "o"
    ]
    expected = [
        [
            (float(j["param_groups.fc3.lr_mult"]), float(j["val/acc@best"]))
            for j in jobs
            if j["seed"] == str(seed)
        ]
        for seed in SEEDS
    ]
    np.testing.assert_allclose(sorted(seeds), sorted(expected))
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "val/acc@best"
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(m) for m in MULTS]
    title = " ".join(figure.get_suptitle().split())
    assert "fixed: param_groups=fc3_boost trainer.max_epochs=1 dataset.classes=[5,6,7]" in title


def red_pixels(image) -> int:
    """Pixels of matplotlib's tab:red, the failed jobs' marks."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return int(((abs(r - 0.84) < 0.06) & (g < 0.3) & (b < 0.3)).sum())


def orange_pixels(image) -> int:
    """Pixels of matplotlib's tab:orange (#ff7f0e), the winner's star."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return int(((r > 0.95) & (abs(g - 0.5) < 0.06) & (b < 0.15)).sum())


def make_rows(table: dict[tuple, float], failed: tuple = ()) -> list[dict]:
    """Job rows as gather_rows makes them, from {(setting, seed): val/acc}."""
    rows = [
        {"job": n, "swept": {"optimizer": s, "seed": seed}, "status": "completed", "error": "",
         "val/acc": acc, "run_dir": f"optimizer={s},seed={seed}", "fixed": ["a=1"]}
        for n, ((s, seed), acc) in enumerate(table.items())
    ]  # fmt: skip
    rows += [
        {"job": len(rows) + i, "swept": {"optimizer": s, "seed": seed}, "status": "failed",
         "error": "boom", "run_dir": "x", "fixed": ["a=1"]}
        for i, (s, seed) in enumerate(failed)
    ]  # fmt: skip
    return rows


def test_the_paired_test_is_scipys_paired_t_and_welch_is_used_without_shared_seeds():
    stats = pytest.importorskip("scipy.stats")
    a = {(0,): 0.80, (1,): 0.85, (2,): 0.83}
    b = {(0,): 0.78, (1,): 0.80, (2,): 0.82}
    best, second = Setting({"k": "a"}), Setting({"k": "b"})
    best.jobs = [{"replicate": r, "val/acc": v} for r, v in a.items()]
    second.jobs = [{"replicate": r, "val/acc": v} for r, v in b.items()]
    verdict = sweep_stats.verdict(best, second, "val/acc")
    assert verdict.p == pytest.approx(stats.ttest_rel(list(a.values()), list(b.values())).pvalue)
    assert verdict.test == "paired t over 3 shared seeds"
    second.jobs = [{"replicate": (r[0] + 10,), "val/acc": v} for r, v in b.items()]
    verdict = sweep_stats.verdict(best, second, "val/acc")
    welch = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    assert verdict.p == pytest.approx(welch) and verdict.test.startswith("Welch")


def test_the_same_lead_on_every_seed_is_weighed_against_the_seeds_spread_not_called_certain():
    stats = pytest.importorskip("scipy.stats")
    a, b = [0.9274, 0.9553], [0.9162, 0.9441]  # measured: a lead of 2 images on both seeds
    best, second = Setting({"k": "a"}), Setting({"k": "b"})
    best.jobs = [{"replicate": (s,), "val/acc": v} for s, v in enumerate(a)]
    second.jobs = [{"replicate": (s,), "val/acc": v} for s, v in enumerate(b)]
    verdict = sweep_stats.verdict(best, second, "val/acc")
    assert verdict.test == "Welch's t (every shared seed gave the same lead)"
    assert verdict.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert not verdict.beyond_noise and verdict.seeds_needed > 2


def test_seeds_needed_grow_as_the_lead_shrinks_against_the_noise():
    small = sweep_stats._seeds_for(0.01, 0.02, paired=True)
    large = sweep_stats._seeds_for(0.04, 0.02, paired=True)
    assert 2 <= large < small
    assert sweep_stats._seeds_for(0.0, 0.02, paired=True) is None


def test_one_seed_per_setting_has_no_verdict_but_says_what_would_give_one(tmp_path):
    rows = make_rows({("sgd", 0): 0.9, ("adamw", 0): 0.8})
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert report.verdicts[0].p is None
    assert "run 3 or more seeds" in report.markdown
    assert read_csv(tmp_path / "settings.csv")[0]["val/acc_std"] == ""


def test_a_clear_lead_is_beyond_noise_and_failed_jobs_are_counted_and_drawn(tmp_path):
    table = {("sgd", s): 0.90 + 0.01 * s for s in range(4)}
    table |= {("adamw", s): 0.70 + 0.012 * s for s in range(4)}
    rows = make_rows(table, failed=[("adamw", 9)])
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert "**beyond seed noise** (paired t over 4 shared seeds" in report.markdown
    settings = read_csv(tmp_path / "settings.csv")
    assert [(s["optimizer"], s["n"], s["failed"]) for s in settings] == [
        ("sgd", "4", "0"),
        ("adamw", "4", "1"),
    ]
    assert "| error |" in report.markdown.splitlines()[-len(rows) - 2]
    image_module = pytest.importorskip("matplotlib.image")
    assert sweep_picture.write(tmp_path, rows, report).endswith("sweep.png")
    assert red_pixels(image_module.imread(tmp_path / "sweep.png")) > 20


def test_nothing_varied_means_one_setting_and_no_verdict(tmp_path):
    rows = make_rows({("sgd", 0): 0.9, ("sgd", 1): 0.8})
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert len(report.settings) == 1 and report.verdicts == []
    assert math.isclose(report.settings[0].mean("val/acc"), 0.85)


@pytest.fixture(scope="module")
def evaluated(sweep):
    sweep_dir, _ = sweep
    # a job that failed keeps its row; evaluation lists it as skipped, with why
    failed = sweep_dir / "lr_mult=-1,seed=0"
    failed.mkdir()
    row = {"job": 6, "overrides": "param_groups.fc3.lr_mult=-1 seed=0", "fixed": [],
           "swept": {"param_groups.fc3.lr_mult": -1, "seed": 0}, "replicate_keys": ["seed"],
           "run_dir": str(failed), "status": "failed", "error": "lr_mult=-1: must be >= 0"}  # fmt: skip
    (failed / "job.json").write_text(json.dumps(row))
    result = run_python("-m", "src.evaluate", f"sweep_dir={sweep_dir}")
    assert result.returncode == 0, result.stderr
    return sweep_dir, result


@pytest.mark.e2e
def test_evaluating_a_sweep_adds_the_test_split_to_every_file_and_lists_what_it_skipped(
    evaluated,
):
    sweep_dir, result = evaluated
    assert "evaluated 6 of 7 jobs: skipped" in result.stdout
    assert f"  {sweep_dir / 'lr_mult=-1,seed=0'}: the job failed (lr_mult=-1" in result.stdout
    tests = {}
    for row in read_csv(sweep_dir / "summary.csv"):
        if row["status"] == "failed":
            assert row["test/acc"] == ""
            continue
        report = json.loads((sweep_dir / row["run_dir"] / "eval_test.json").read_text())
        assert float(row["test/acc"]) == pytest.approx(report["accuracy"])
        tests.setdefault(row["param_groups.fc3.lr_mult"], []).append(report["accuracy"])
        # a scalar of the run: a metric of its HPARAMS row (tests/test_sweep_view.py)
        run = sweep_dir / row["run_dir"]
        assert read_scalars(run)["eval/test/accuracy"][-1][1] == pytest.approx(report["accuracy"])
    settings = read_csv(sweep_dir / "settings.csv")
    for setting in settings:
        accs = tests.get(setting["param_groups.fc3.lr_mult"])
        if accs:
            assert float(setting["test/acc_mean"]) == pytest.approx(statistics.mean(accs))
    assert [s["failed"] for s in settings] == ["0", "0", "0", "1"]
    markdown = (sweep_dir / "summary.md").read_text()
    assert any(line.startswith("**test/acc**: lr_mult=") for line in markdown.splitlines())
    image = pytest.importorskip("matplotlib.image").imread(sweep_dir / "sweep.png")
    assert image.shape[:2] == (400, 1000)  # val/acc and test/acc
    assert red_pixels(image) > 0  # the failed job, marked


@pytest.mark.e2e
def test_a_job_dir_pasted_as_printed_works_in_run_dir(evaluated):
    sweep_dir, _ = evaluated
    job = read_csv(sweep_dir / "summary.csv")[5]["run_dir"]  # holds `=` and `,`
    assert job == str(sweep_dir / "lr_mult=100,seed=1")
    result = run_python("-m", "src.evaluate", f"run_dir={job}", "split=val")
    assert result.returncode == 0, result.stderr
    assert (sweep_dir / "lr_mult=100,seed=1" / "eval_val.json").exists()


def test_path_values_are_quoted_for_hydra_as_given():
    paths = {"run_dir"}
    for given in ["out/lr_mult=100,seed=1", "it's", "a\\", "a\\b", "c\\'d", "x y"]:
        assert compose_command("evaluate", [f"run_dir={given}"]).run_dir == given
        assert quote_path(f"run_dir={given}", paths).startswith("run_dir='")
    assert compose_command("evaluate", ["run_dir='a=b'"]).run_dir == "a=b"  # quoted already
    assert compose_command("evaluate", ["run_dir=null"]).run_dir is None
    assert quote_path("split=a,b", paths) == "split=a,b"  # not a path: Hydra's grammar


@pytest.mark.e2e
def test_a_real_tensorboard_lists_the_test_accuracy_among_each_rows_metrics(evaluated):
    sweep_dir, _ = evaluated
    with TensorBoardServer(sweep_dir, expected_runs=6) as get:
        experiment, groups = hparams_table(get)
    assert "eval/test/accuracy" in {m["name"]["tag"] for m in experiment["metricInfos"]}
    for group in groups:
        run = sweep_dir / group["sessions"][0]["name"]
        accuracy = json.loads((run / "eval_test.json").read_text())["accuracy"]
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert values["eval/test/accuracy"] == pytest.approx(accuracy)


def test_the_replicate_keys_are_the_callbacks_and_pool_every_key_named(tmp_path):
    cfg = compose_config("hydra.callbacks.sweep_summary.replicate_keys=[seed,k]", with_hydra=True)
    assert list(cfg.hydra.callbacks.sweep_summary.replicate_keys) == ["seed", "k"]
    assert list(compose_config(with_hydra=True).hydra.callbacks.sweep_summary.replicate_keys) == [
        "seed"
    ]
    rows = make_rows({("sgd", 0): 0.9, ("sgd", 1): 0.8, ("adamw", 0): 0.7})
    for n, row in enumerate(rows):
        row["swept"]["k"] = n  # another chance-only key: pooled too
    report = sweep_tables.write(tmp_path, rows, ["seed", "k"])
    assert [(s.values, len(s.jobs)) for s in report.settings] == [
        ({"optimizer": "sgd"}, 2),
        ({"optimizer": "adamw"}, 1),
    ]
    assert "pooled over: seed, k" in report.markdown
