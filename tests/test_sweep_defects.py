"""Issue 29's six wrong answers of a sweep, each as it was met: a reused sweep dir mixing two
sweeps, a winner starred in a tie, settings ranked on one checkpoint and tested on another,
one value listed twice, failed settings ranked as runners-up, and seeds needed from the
normal approximation."""

import json
import math

import pytest

from src.config.sweep import repeated_values
from src.tracking import sweep_picture, sweep_stats, sweep_tables
from tests.conftest import assert_one_clear_line, run_cli, run_python
from tests.tables import read_csv
from tests.test_sweep_answer import make_rows, orange_pixels

TINY_SWEEP = ["trainer.max_epochs=1", "dataset.shots_per_class=8", "dataset.batch_size=8"]


@pytest.mark.e2e
def test_a_second_sweep_into_a_used_dir_is_refused_and_the_first_keeps_its_answer(tmp_path):
    run_cli("-m", "seed=0,1", *TINY_SWEEP, f"hydra.sweep.dir={tmp_path}")
    summary = (tmp_path / "summary.md").read_text()
    second = run_cli(
        "-m", "param_groups=fc3_boost", "param_groups.fc3.lr_mult=1,10", *TINY_SWEEP,
        f"hydra.sweep.dir={tmp_path}", check=False,
    )  # fmt: skip
    assert_one_clear_line(second, f"hydra.sweep.dir={tmp_path}: holds another sweep already")
    assert not list(tmp_path.glob("lr_mult=*"))  # nothing of the second was made
    assert (tmp_path / "summary.md").read_text() == summary
    evaluated = run_python("-m", "src.evaluate", f"sweep_dir={tmp_path}")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "evaluated 2 of 2 jobs" in evaluated.stdout
    assert (tmp_path / "summary.md").read_text().startswith("2 jobs; fixed: `trainer.max_epochs=1")


def test_a_tie_has_no_winner_no_star_and_says_so_in_the_files_and_the_picture(tmp_path):
    table = {(s, seed): 0.80 + 0.01 * seed for s in ("sgd", "adamw") for seed in range(3)}
    rows = make_rows(table)  # bit-identical results: a tie
    for row in rows:
        row["val/acc@best"] = row["val/acc"]
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert report.winner is None
    markdown = report.markdown
    assert "**no clear winner**: optimizer=sgd and optimizer=adamw tie." in markdown
    assert "winner**" not in markdown.replace("no clear winner**", "")
    assert "★" not in markdown and "+0.0000" not in markdown and "1000 seeds" not in markdown
    assert "tie at 0.8100: no number of seeds would separate them" in markdown
    assert [s["rank"] for s in read_csv(tmp_path / "settings.csv")] == ["1", "2"]
    image = pytest.importorskip("matplotlib.image")
    assert sweep_picture.write(tmp_path, rows, report).endswith("sweep.png")
    assert orange_pixels(image.imread(tmp_path / "sweep.png")) == 0  # no star


def test_a_lead_within_seed_noise_names_no_winner_and_the_picture_titles_the_verdict(
    tmp_path, monkeypatch
):
    table = {("sgd", s): v for s, v in enumerate((0.80, 0.90, 0.84))}
    table |= {("adamw", s): v for s, v in enumerate((0.82, 0.85, 0.83))}
    rows = make_rows(table)
    for row in rows:
        row["val/acc@best"] = row["val/acc"]
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert report.winner is None and not report.verdicts[0].beyond_noise
    answer = "no clear winner: optimizer=sgd's lead over optimizer=adamw is within seed noise"
    assert f"**{answer.replace(':', '**:', 1)}" in report.markdown
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    titles, savefig = [], Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda fig, *a, **k: (titles.append(fig.get_suptitle()), savefig(fig, *a, **k))
    )  # fmt: skip
    sweep_picture.write(tmp_path, rows, report)
    assert answer in " ".join(titles[0].split())


def test_settings_are_ranked_by_the_checkpoint_evaluate_tests_and_the_files_say_which(tmp_path):
    # The last epoch favours sgd; best.pt, the checkpoint tested, favours adamw.
    table = {("sgd", s): 0.90 + 0.01 * s for s in range(3)}
    table |= {("adamw", s): 0.80 + 0.01 * s for s in range(3)}
    rows = make_rows(table)
    for row in rows:
        at_best = 0.95 if row["swept"]["optimizer"] == "adamw" else 0.91
        row["val/acc@best"] = at_best + 0.01 * row["swept"]["seed"]
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert [s["optimizer"] for s in read_csv(tmp_path / "settings.csv")] == ["adamw", "sgd"]
    assert report.verdicts[0].metric == "val/acc@best"
    assert "best first by mean val/acc@best" in report.markdown
    assert "the val/acc of each job's checkpoints/best.pt" in report.markdown


def test_the_job_rows_take_val_acc_at_best_pt_from_metrics_json(tmp_path):
    from src.tracking.sweep_summary import gather_rows
    from src.training.state import TrainingState

    state = TrainingState(epoch=3, best_score=0.9, best_epoch=2)
    state.history = [{"epoch": e, "val/acc": a, "val/loss": 1.0} for e, a in ((1, 0.5), (2, 0.9), (3, 0.7))]  # fmt: skip
    job = tmp_path / "seed=0"
    job.mkdir()
    (job / "metrics.json").write_text(json.dumps(state.final_metrics("val/acc")))
    row = {"job": 0, "status": "completed", "error": "", "swept": {"seed": 0}}
    (job / "job.json").write_text(json.dumps(row))
    (gathered,) = gather_rows(tmp_path)
    assert (gathered["val/acc"], gathered["val/acc@best"], gathered["best_epoch"]) == (0.7, 0.9, 2)


@pytest.mark.parametrize(
    "sweep", ["param_groups.fc3.lr_mult=10,10.0", "param_groups.fc3.lr_mult=1e1,10", "seed=0,0"]
)
def test_one_value_written_two_ways_is_a_repeated_value(sweep):
    assert repeated_values([sweep], None) == [sweep]
    assert repeated_values(["param_groups.fc3.lr_mult=1,10,100"], None) == []


@pytest.mark.e2e
def test_a_value_listed_twice_under_two_spellings_is_refused_at_launch(tmp_path):
    result = run_cli(
        "-m", "param_groups=fc3_boost", "param_groups.fc3.lr_mult=10,10.0", *TINY_SWEEP,
        f"hydra.sweep.dir={tmp_path}", check=False,
    )  # fmt: skip
    assert_one_clear_line(result, "param_groups.fc3.lr_mult=10,10.0: the sweep lists a value twice")
    assert not list(tmp_path.iterdir())


def test_a_setting_whose_every_seed_failed_is_listed_as_failed_not_ranked(tmp_path):
    table = {("sgd", s): 0.90 + 0.01 * s for s in range(3)}
    table |= {("adamw", s): 0.70 + 0.012 * s for s in range(3)}
    rows = make_rows(table, failed=[("rmsprop", 0), ("rmsprop", 1), ("adamw", 9)])
    for row in rows:
        row["val/acc@best"] = row.get("val/acc")
    report = sweep_tables.write(tmp_path, rows, ["seed"])
    assert [s.values["optimizer"] for s in report.settings] == ["sgd", "adamw"]
    settings = read_csv(tmp_path / "settings.csv")
    assert [(s["rank"], s["optimizer"], s["n"], s["failed"]) for s in settings] == [
        ("1", "sgd", "3", "0"),
        ("2", "adamw", "3", "1"),
        ("failed", "rmsprop", "0", "2"),
    ]
    assert "**failed**: optimizer=rmsprop: 2 of 2 jobs failed; not ranked." in report.markdown
    assert "| failed | rmsprop | 0 |" in report.markdown


def power(n: int, effect: float) -> float:
    """The exact power of a two-sided paired t test at ALPHA with n pairs, `effect` = lead / sd."""
    stats = pytest.importorskip("scipy.stats")
    dof, shift = n - 1, effect * math.sqrt(n)
    critical = stats.t.ppf(1 - sweep_stats.ALPHA / 2, dof)
    return stats.nct.sf(critical, dof, shift) + stats.nct.cdf(-critical, dof, shift)


def test_seeds_needed_are_the_fewest_with_the_exact_noncentral_t_power():
    # A lead of 2.1 standard deviations: the normal approximation said 4 seeds; 4 give 77%.
    needed = sweep_stats._seeds_for(0.021, 0.01, paired=True)
    assert power(4, 2.1) < sweep_stats.POWER <= power(5, 2.1)
    assert needed == 5
    for lead in (0.005, 0.01, 0.03):
        n = sweep_stats._seeds_for(lead, 0.01, paired=True)
        assert power(n - 1, lead / 0.01) < sweep_stats.POWER <= power(n, lead / 0.01)
