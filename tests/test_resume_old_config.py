"""A run trained by an older groupwise resumes and evaluates (src/migration.py reads its
config as today's): one from before the fine-tuning recipe's options (issue 23) lacks
`dataset.mixup_alpha` and the rest and says `dataset.augment: true`, which read as the schema's
defaults and today's name for the value, so only a real change is refused; one from before
model sources were objects names a builder function as its model's target; one from before
the presets excluded the head by role excluded it by the pattern `'^fc3\\.'`."""

import json

import pytest
import torch
from omegaconf import OmegaConf

from src import evaluate
from src.errors import GroupwiseError
from src.migration import dataset_as_today
from src.models.lenet import LeNetSource
from src.resume import resume_state
from src.runner import Runner
from src.trained_run import TrainedRun
from src.training.checkpoints import CONFIG, PROGRESS, load_checkpoint
from tests.conftest import compose_config

# Options the datasets gained with issue 23; `augment` was a bool (default true) before it.
NEW_OPTIONS = (
    "mixup_alpha", "cutmix_alpha", "mixup_switch_prob", "random_erasing",
    "randaugment_num_ops", "randaugment_magnitude",
)  # fmt: skip


def old_checkpoint(path, cfg) -> None:
    """A checkpoint of one trained epoch whose config is `cfg` as runs saved it before."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in NEW_OPTIONS:
        config["dataset"].pop(key, None)
    if "augment" in config["dataset"]:
        config["dataset"]["augment"] = True
    torch.save({CONFIG: config, PROGRESS: {"epoch": 1}}, path)


@pytest.mark.parametrize(
    "dataset", [[], ["dataset=image_folder", "dataset.root=/data/photos", "model=resnet18"]]
)
def test_a_run_saved_before_the_recipe_options_resumes_with_todays_defaults(
    make_cfg, tmp_path, dataset
):
    cfg = make_cfg(*dataset, "trainer.max_epochs=3")
    old_checkpoint(tmp_path / "last.pt", cfg)
    assert resume_state(tmp_path / "last.pt", cfg)[PROGRESS]["epoch"] == 1


def test_an_option_set_on_resume_that_the_old_run_trained_without_is_still_refused(
    make_cfg, tmp_path
):
    old_checkpoint(tmp_path / "last.pt", make_cfg("trainer.max_epochs=3"))
    with pytest.raises(GroupwiseError, match=r"dataset\.mixup_alpha: 0\.0 -> 0\.8"):
        resume_state(
            tmp_path / "last.pt", make_cfg("trainer.max_epochs=3", "dataset.mixup_alpha=0.8")
        )


def test_augment_true_of_an_old_run_is_todays_basic_and_none_differs(make_cfg, tmp_path):
    photos = ["dataset=image_folder", "dataset.root=/data/photos", "model=resnet18"]
    old_checkpoint(tmp_path / "last.pt", make_cfg(*photos, "trainer.max_epochs=3"))
    resume_state(
        tmp_path / "last.pt", make_cfg(*photos, "trainer.max_epochs=3", "dataset.augment=true")
    )
    with pytest.raises(GroupwiseError, match=r"dataset\.augment: 'basic' -> 'none'"):
        resume_state(
            tmp_path / "last.pt", make_cfg(*photos, "trainer.max_epochs=3", "dataset.augment=none")
        )


def test_a_run_whose_model_target_was_a_builder_function_resumes_and_rebuilds(make_cfg, tmp_path):
    cfg = make_cfg("trainer.max_epochs=3")
    config = OmegaConf.to_container(cfg, resolve=True)
    config["model"]["_target_"] = "src.models.lenet.LeNet"  # as runs saved it before sources
    torch.save({CONFIG: config, PROGRESS: {"epoch": 1}}, tmp_path / "last.pt")
    assert resume_state(tmp_path / "last.pt", cfg)[PROGRESS]["epoch"] == 1
    run = TrainedRun(tmp_path, OmegaConf.create(config), "last", {}, 1, 10)
    assert isinstance(run.source, LeNetSource)
    # Another model is still refused, named as today's.
    with pytest.raises(
        GroupwiseError, match=r"model\._target_: '\S+LeNetSource' -> '\S+Torchvision"
    ):
        resume_state(tmp_path / "last.pt", make_cfg("trainer.max_epochs=3", "model=resnet18"))


@pytest.mark.e2e  # two short runs and an evaluation, in this process
def test_a_run_that_excluded_the_head_by_pattern_resumes_under_the_head_role_and_evaluates(
    tmp_path,
):
    tiny = ["dataset.shots_per_class=4", "dataset.batch_size=10"]
    # As the shipped preset was: the head excluded by the pattern on LeNet's names.
    Runner(
        compose_config(*tiny, "trainer.max_epochs=1", r"pretrained.exclude=['^fc3\.']"), tmp_path
    ).run()
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")[CONFIG]["pretrained"]
    assert saved["exclude"] == [r"^fc3\."]

    resumed = Runner(compose_config(*tiny, "trainer.max_epochs=2", "resume=true"), tmp_path)
    resumed.run()  # today's preset: exclude [head]
    assert resumed.load_report.excluded_by_role == {"head": ["fc3.weight", "fc3.bias"]}
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")[PROGRESS]["epoch"] == 2

    evaluate.main([f"run_dir={tmp_path}", "split=val"])
    assert json.loads((tmp_path / "eval_val.json").read_text())["split"] == "val"


# Options the datasets gained with issue 33 (the training view and the evaluation's crop).
VIEW_OPTIONS = (
    "train_crop", "crop_scale", "crop_ratio", "crop_padding", "hflip", "vflip", "color_jitter",
    "crop_pct", "interpolation",
)  # fmt: skip
KINDS = {
    "digits": [],
    "image_folder": ["dataset=image_folder", "dataset.root=/data/photos", "model=resnet18"],
    "cifar10": ["dataset=cifar10", "pretrained=none"],
}


def before_the_view(cfg) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in VIEW_OPTIONS:
        config["dataset"].pop(key, None)
    return config


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_run_saved_before_the_view_options_reads_them_as_what_it_trained_with(
    make_cfg, tmp_path, kind
):
    """Resume and the commands that rebuild a trained run's data (src.evaluate, src.predict)
    read an old run's view as its kind's defaults: photos a resized crop and a flip, small
    images a padded crop, the digits none; a change of one on resume is refused."""
    cfg = make_cfg(*KINDS[kind], "trainer.max_epochs=3")
    config = before_the_view(cfg)
    torch.save({CONFIG: config, PROGRESS: {"epoch": 1}}, tmp_path / "last.pt")
    assert resume_state(tmp_path / "last.pt", cfg)[PROGRESS]["epoch"] == 1
    today = dataset_as_today(OmegaConf.create(config["dataset"]))
    expected = {"digits": "none", "image_folder": "resized", "cifar10": "padded"}[kind]
    assert today.train_crop == expected and today.get("crop_pct") is None
    old, new = (0.5, 0.0) if kind == "image_folder" else (0.0, 0.5)
    assert today.hflip == old
    with pytest.raises(GroupwiseError, match=rf"dataset\.hflip: {old} -> {new}"):
        resume_state(
            tmp_path / "last.pt",
            make_cfg(*KINDS[kind], "trainer.max_epochs=3", f"dataset.hflip={new}"),
        )
