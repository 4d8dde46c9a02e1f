"""`python -m src.soup`: the uniform and greedy soups of a tiny sweep, WiSE-FT of one of its
jobs, each a run that src.evaluate and src.predict use unchanged; the soup-ability check."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from src.errors import GroupwiseError
from src.soups.average import RunningSum, interpolate, mapped_weights
from src.soups.ingredients import Ingredient, check_soupable
from src.training.checkpoints import MODEL, load_checkpoint
from tests.conftest import assert_one_clear_line, run_cli, run_python


@pytest.fixture(scope="module")
def souped(tmp_path_factory):
    """A sweep of 2 multipliers x 2 seeds on one split, then its soups."""
    sweep_dir = tmp_path_factory.mktemp("sweep")
    run_cli(
        "-m", "param_groups=fc3_boost", "param_groups.fc3.lr_mult=1,10", "seed=0,1",
        "dataset.split_seed=0", "dataset.shots_per_class=8", "dataset.batch_size=8",
        "trainer.max_epochs=1", "dataset.classes=[5,6,7]", f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    result = run_python("-m", "src.soup", f"sweep_dir={sweep_dir}")
    assert result.returncode == 0, result.stderr
    return sweep_dir


def soup_record(sweep_dir: Path, kind: str) -> dict:
    return json.loads((sweep_dir / "soups" / kind / "soup.json").read_text())


@pytest.mark.e2e
def test_the_greedy_soup_is_never_worse_on_val_than_its_best_ingredient(souped):
    greedy = soup_record(souped, "greedy")
    best = max(ingredient["val_acc"] for ingredient in greedy["ingredients"])
    assert greedy["val_acc"] >= best
    assert len(greedy["ingredients"]) == 4 and greedy["ingredients"][0]["in_soup"]
    uniform = soup_record(souped, "uniform")
    assert all(ingredient["in_soup"] for ingredient in uniform["ingredients"])
    assert "src.soup" in greedy["command"] and greedy["batch_norm"]


@pytest.mark.e2e
def test_a_greedy_soup_of_one_ingredient_is_that_job_bit_for_bit(souped):
    greedy = soup_record(souped, "greedy")
    kept = [ingredient for ingredient in greedy["ingredients"] if ingredient["in_soup"]]
    soup = load_checkpoint(souped / "soups/greedy/checkpoints/best.pt")[MODEL]
    if len(kept) == 1:
        job = load_checkpoint(Path(kept[0]["run_dir"]) / kept[0]["checkpoint"])[MODEL]
        assert soup.keys() == job.keys()
        assert all(torch.equal(soup[key], job[key]) for key in job)
    job_dir = Path(kept[0]["run_dir"])  # and the average of one, whatever greedy kept
    pot = RunningSum()
    pot.add(mapped_weights(job_dir / "checkpoints/best.pt")[0])
    job = load_checkpoint(job_dir / "checkpoints/best.pt")[MODEL]
    assert all(torch.equal(pot.average()[key], job[key]) for key in job)


@pytest.mark.e2e
def test_evaluate_and_predict_use_a_soup_as_any_run(souped, tmp_path):
    soup_dir = souped / "soups" / "uniform"
    result = run_python("-m", "src.evaluate", f"run_dir={soup_dir}", "split=val")
    assert result.returncode == 0, result.stderr
    report = json.loads((soup_dir / "eval_val.json").read_text())
    assert report["accuracy"] == pytest.approx(soup_record(souped, "uniform")["val_acc"])
    from PIL import Image

    Image.new("L", (32, 32), 128).save(tmp_path / "digit.png")
    result = run_python("-m", "src.predict", f"run_dir={soup_dir}", f"inputs={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert (soup_dir / "predictions.csv").read_text().count("\n") == 2
    result = run_python("-m", "src.evaluate", f"sweep_dir={souped}")
    assert result.returncode == 0, result.stderr
    summary = (souped / "summary.md").read_text()
    assert "## Soups" in summary and "**greedy soup**" in summary and "on test:" in summary


@pytest.mark.e2e
def test_wise_ft_keeps_the_alpha_best_on_val_and_alpha_one_is_the_run(souped):
    """WiSE-FT of a sweep's job lands in the sweep's soups, and the sweep-wide evaluate
    reports it beside its job, on test too."""
    job_dir = souped / "lr_mult=10,seed=0"
    result = run_python("-m", "src.soup", f"run_dir={job_dir}", "wise_alphas=[0,0.5,1]")
    assert result.returncode == 0, result.stderr
    wise_dir = souped / "soups" / "wise" / "lr_mult=10,seed=0"
    record = json.loads((wise_dir / "soup.json").read_text())
    tried = {entry["alpha"]: entry["accuracy"] for entry in record["alphas"]}
    assert record["val_acc"] == max(tried.values()) == tried[record["alpha"]]
    assert "fc3.weight" not in record["interpolated"] and "conv1.weight" in record["interpolated"]
    job = json.loads((souped / "soups/greedy/soup.json").read_text())["ingredients"]
    assert tried[1.0] == next(i["val_acc"] for i in job if i["run_dir"] == str(job_dir))
    result = run_python("-m", "src.evaluate", f"sweep_dir={souped}")
    assert result.returncode == 0, result.stderr
    test = json.loads((wise_dir / "eval_test.json").read_text())["accuracy"]
    summary = (souped / "summary.md").read_text()
    assert f"**WiSE-FT of lr_mult=10,seed=0 (alpha {record['alpha']:g})**" in summary
    assert f"on test: {test:.4f} against" in summary


@pytest.mark.e2e
def test_the_command_refuses_other_models_and_other_weights_in_one_line(souped, tmp_path):
    """Through `python -m src.soup`: exit 2, one `groupwise: error:` line naming the job, no
    soups dir. A sweep of LeNet and ResNet-18 from scratch; then one of its LeNet jobs beside a
    job of `souped` (LeNet from the shipped digits 0-4 weights)."""
    models = tmp_path / "models"
    run_cli(
        "-m", "model=lenet,resnet18", "pretrained=none", "dataset.split_seed=0",
        "dataset.shots_per_class=2", "dataset.classes=[5,6,7]", "trainer.max_epochs=1",
        f"hydra.sweep.dir={models}",
    )  # fmt: skip
    weights = tmp_path / "weights"
    shutil.copytree(models / "model=lenet", weights / "scratch")
    shutil.copytree(souped / "lr_mult=1,seed=0", weights / "shipped")
    for sweep_dir, said in ((models, "another model"), (weights, "other pretrained weights")):
        result = run_python("-m", "src.soup", f"sweep_dir={sweep_dir}")
        assert_one_clear_line(result, "cannot be souped with")
        assert said in result.stderr and f"{sweep_dir}/" in result.stderr
        assert not (sweep_dir / "soups").exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "named"),
    # the OS names no file when a write fails: what the soup writes names its file, or its dir
    [("soup.json", "soup.json"), ("metrics.json", "metrics.json"), ("model.json", "export")],
)
def test_a_soup_on_a_full_disk_is_one_line_and_leaves_no_half_soup(souped, tmp_path, name, named):
    """Files named `name` find the disk full (tests/crashing_run.py, in the real command's
    process): exit 74, one line naming the file, and no soup dir that could pass for whole."""
    output = tmp_path / "soups"
    result = run_python(
        "-m", "tests.crashing_run", "full-file", name, "src.soup", f"sweep_dir={souped}",
        f"output_dir={output}",
    )  # fmt: skip
    assert result.returncode == 74, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"groupwise: error: could not write {output / 'uniform'}/")
    assert f"/uniform/{named} (No space left on device)" in line, line
    assert f"{output / 'uniform'} removed" in line and not (output / "uniform").exists()


def ingredient(name: str, shapes=None, **changes) -> Ingredient:
    """A job's ingredient as read, `changes` (`section__option`) from a reference one."""
    cfg = {
        "seed": 0,
        "model": {"name": "lenet"},
        "pretrained": {"path": "weights/lenet_digits_0-4.pt"},
        "dataset": {"_target_": "src.data.digits.digits", "classes": [5, 6], "split_seed": 0},
    }
    for key, value in changes.items():
        section, _, option = key.partition("__")
        cfg[section] = {**cfg[section], option: value} if option else value
    return Ingredient(Path(name), Path(name) / "best.pt", cfg, "model", shapes or {"w": [2]})


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"model__name": "resnet18"}, "another model"),
        ({"pretrained__path": "other.pt"}, "other pretrained weights"),
        ({"dataset__split_seed": None, "seed": 1}, "another data split"),
        ({"shapes": {"w": [3]}}, "w has shape [3] against [2]"),
        ({"shapes": {"v": [2]}}, "other parameter names"),
    ],
)
def test_jobs_that_cannot_be_souped_are_refused_in_one_line_naming_the_job(changes, said):
    with pytest.raises(GroupwiseError) as refused:
        check_soupable([ingredient("job0"), ingredient("job1", **changes)])
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith("job1: cannot be souped with job0")
    assert said in refused.value.problems[0]
    check_soupable([ingredient("job0"), ingredient("job1", seed=1)])  # one split: fine


def test_runs_saved_before_split_seed_existed_split_by_their_seed():
    saved = {"_target_": "src.data.torchvision_datasets.cifar10", "root": "data"}  # no key
    with pytest.raises(GroupwiseError, match="another data split"):
        check_soupable(
            [ingredient("job0", dataset=saved), ingredient("job1", seed=1, dataset=saved)]
        )
    own = {"_target_": "my_data.build"}  # a user's dataset without the option: not ours to say
    check_soupable([ingredient("job0", dataset=own), ingredient("job1", seed=1, dataset=own)])


def test_seeds_differing_on_an_image_folder_are_refused_only_where_the_seed_draws_the_split(
    tmp_path,
):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    folder = {"_target_": "src.data.image_folder.image_folder", "split_seed": None}
    split_by_files = {**folder, "root": str(tmp_path)}
    check_soupable(
        [
            ingredient("job0", dataset=split_by_files),
            ingredient("job1", seed=1, dataset=split_by_files),
        ]
    )
    drawn = {**folder, "root": str(tmp_path / "train")}  # class folders, split by the seed
    with pytest.raises(GroupwiseError, match="another data split"):
        check_soupable(
            [ingredient("job0", dataset=drawn), ingredient("job1", seed=1, dataset=drawn)]
        )


def test_wise_interpolation_is_exact_at_both_ends_and_leaves_the_head_as_trained():
    pretrained = {"body": torch.randn(5), "head": torch.randn(3)}
    finetuned = {"body": torch.randn(5), "head": torch.randn(3)}
    for alpha, expected in ((0.0, pretrained), (1.0, finetuned)):
        mixed = interpolate(pretrained, finetuned, alpha, {"body"})
        assert torch.equal(mixed["body"], expected["body"])
        assert torch.equal(mixed["head"], finetuned["head"])
    half = interpolate(pretrained, finetuned, 0.5, {"body"})["body"]
    torch.testing.assert_close(half, (pretrained["body"] + finetuned["body"]) / 2)
