"""`python -m src.run --help`: what the command does, the config groups a user picks (not the
internal `schema` group) with their options, every option's meaning, type and default from
the schema, the sweep syntax and where the README says more."""

from dataclasses import fields

import pytest

from src.config import schema
from tests.conftest import run_cli

pytestmark = pytest.mark.e2e  # runs the CLI


def test_help_names_every_option_with_its_help_and_the_groups_a_user_picks():
    result = run_cli("--help")
    text = result.stdout
    assert result.returncode == 0 and not result.stderr
    assert "powered by Hydra" not in text and "${project_dir:}" not in text
    for name in (
        "TrainerConfig",
        "PretrainedConfig",
        "DigitsConfig",
        "ImageFolderConfig",
        "TorchvisionDatasetConfig",
    ):
        for f in fields(getattr(schema, name)):
            if f.name.startswith("_"):  # `_target_`: what the config file names, not an option
                continue
            assert f.metadata["help"] in text, (name, f.name)
    groups = text.split("config groups")[1].split("options (")[0]
    assert "  model " in groups and "lenet*" in groups and "sgd*" in groups
    assert "schema" not in groups and "hydra" not in groups
    assert "trainer.max_epochs               int, default 20; epochs to train" in text
    assert "python -m src.run -m seed=0,1,2" in text and "README.md" in text
