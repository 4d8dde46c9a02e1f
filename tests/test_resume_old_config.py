"""A run trained before the fine-tuning recipe's options existed (issue 23) resumes: its saved
config lacks `dataset.mixup_alpha` and the rest and says `dataset.augment: true`; those read as
the schema's defaults and today's name for the value, so only a real change is refused."""

import pytest
import torch
from omegaconf import OmegaConf

from src.errors import GroupwiseError
from src.resume import resume_state
from src.training.checkpoints import CONFIG, PROGRESS

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
