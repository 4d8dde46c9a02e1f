"""Check once: a command with several independent mistakes (config, schedule, data, groups,
model) is told all of them in one run, before anything is built or written: one line each,
exit 2, no run dir left."""

import pytest

from tests.conftest import error_lines, run_cli_here

# (overrides, what each mistake's line says): every case mixes sections that are checked by
# different parts (the schema, the optimizer, the dataset, the groups on the meta model).
CATALOGUE = {
    "the-issues-four": (
        [
            "optimizer.lr=-1",
            "scheduler=step",
            "scheduler.step_size=0",
            "dataset.val_fraction=0.5",
            "dataset.test_fraction=0.6",
            "param_groups=fc3_boost",
            "param_groups.fc3.pattern=xyz",
        ],
        [
            "optimizer.lr=-1: must be a finite number >= 0",
            "scheduler.step_size=0: must be >= 1",
            "dataset.val_fraction=0.5 and dataset.test_fraction=0.6 leave no training images",
            "param_groups.fc3.pattern='xyz' matches no parameter",
        ],
    ),
    "epochs-shots-pattern": (
        [
            "trainer.max_epochs=0",
            "dataset.shots_per_class=1000",
            "param_groups=fc3_boost",
            "param_groups.fc3.pattern=fc4",
        ],
        [
            "trainer.max_epochs=0: must be >= 1",
            "dataset.shots_per_class=1000: digit 5 has only 110 training images; use at most 110",
            "param_groups.fc3.pattern='fc4' matches no parameter (a typo?); closest parameter "
            "names: ['fc3.bias'",
        ],
    ),
    "folder-workers-milestones-monitor": (
        [
            "dataset=image_folder",
            "dataset.root={tmp}/nowhere",
            "dataset.persistent_workers=true",
            "scheduler=multistep",
            "scheduler.milestones=[0]",
            "trainer.monitor=val_ema/acc",
        ],
        [
            "dataset.root={tmp}/nowhere: no such directory",
            "dataset.persistent_workers=true needs worker processes",
            "scheduler.milestones=[0]: each item must be >= 1",
            "trainer.monitor=val_ema/acc: no weight EMA is kept",
        ],
    ),
    "mismatched-classes-weight-decay-roles": (
        [
            "dataset=image_folder",
            "dataset.root={tmp}/mismatched",
            "pretrained=none",
            "optimizer.weight_decay=-0.1",
            "param_groups=resnet_layer_decay",  # roles LeNet's source cannot name
        ],
        [
            "optimizer.weight_decay=-0.1: must be a finite number >= 0",
            "train/ and val/ hold different classes (['a', 'b'] vs ['a', 'c'])",
            "param_groups.stem: role=embeddings: the model source lenet cannot name its embeddings",
            "param_groups.stages: role=blocks: the model source lenet cannot name its blocks",
        ],
    ),
    "custom-model-head-classes-warmup": (
        [
            "model._target_=torch.nn.Identity",
            "param_groups=head_boost",
            "dataset.classes=[3,11]",
            "scheduler=warmup_cosine",
            "scheduler.warmup_epochs=-1",
        ],
        [
            "dataset.classes=[3,11]: each item must be <= 9",
            "scheduler.warmup_epochs=-1: must be >= 0",
            "param_groups.head: role=head: the model source torch.nn.Identity cannot name its head",
            # the default pretrained preset excludes the head by its role
            "pretrained.exclude=[head]: the model source torch.nn.Identity cannot name its head",
        ],
    ),
}


@pytest.fixture
def mismatched_folder(tmp_path):
    """Class folders only (no image is read before the layout is checked)."""
    for split, classes in (("train", "ab"), ("val", "ac")):
        for name in classes:
            (tmp_path / "mismatched" / split / name).mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("case", CATALOGUE)
def test_every_mistake_of_a_command_is_told_in_one_run_and_nothing_is_written(
    case, mismatched_folder
):
    tmp = mismatched_folder
    overrides, expected = CATALOGUE[case]
    run_dir = tmp / "run"
    result = run_cli_here(
        *(o.format(tmp=tmp) for o in overrides), f"hydra.run.dir={run_dir}", check=False
    )
    lines = error_lines(result)  # exit 2, one `groupwise: error:` line each, no traceback
    assert len(lines) == len(expected), "\n".join(lines)
    for wanted in expected:
        assert any(wanted.format(tmp=tmp) in line for line in lines), (wanted, lines)
    assert not run_dir.exists()
