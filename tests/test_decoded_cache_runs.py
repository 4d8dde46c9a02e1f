"""Whole runs on a cached image folder: resumed exactly, and the cache built once."""

import pytest

from src.runner import Runner
from src.training.checkpoints import load_checkpoint
from tests.conftest import ROOT, run_python
from tests.generated_data import write_image_folder
from tests.runs import assert_same_state, resumed_from

pytestmark = pytest.mark.e2e  # whole runs


def test_a_cached_run_with_augmentation_resumed_mid_epoch_ends_bit_identical(
    make_cfg, tmp_path, every_checkpoint
):
    # 3 classes x 8 images, a quarter held out: 18 to train, batch 4: 5 steps an epoch.
    root = write_image_folder(tmp_path / "data", per_class=8)
    overrides = [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.cache=true",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "dataset.val_fraction=0.25",
        "dataset.batch_size=4",
        "dataset.augment=randaugment",
        "dataset.num_workers=1",  # the crops are drawn in a worker, from its seeded generator
        "trainer.max_epochs=3",
        "trainer.checkpoint_every_n_steps=1",
        "scheduler=cosine",
        "pretrained=none",
    ]
    Runner(make_cfg(*overrides), tmp_path / "whole").run()
    final = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    assert sorted(every_checkpoint) == list(range(1, 16))
    for step in (7, 13):  # inside epochs 2 and 3
        cfg = make_cfg(*overrides, "resume=true")
        resumed = resumed_from(every_checkpoint[step], tmp_path / f"from{step}", cfg)
        assert_same_state(final, resumed)


def test_a_run_that_builds_the_cache_ends_bit_identical_to_a_run_that_reuses_it(make_cfg, tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=6)
    overrides = [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.cache=true",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "dataset.batch_size=4",
        "dataset.num_workers=1",  # the build decodes in a loader worker too
        "trainer.max_epochs=2",
        "pretrained=none",
    ]
    Runner(make_cfg(*overrides), tmp_path / "builds").run()
    (version,) = (tmp_path / "cache").glob("*/v-*")
    Runner(make_cfg(*overrides), tmp_path / "reuses").run()
    assert list((tmp_path / "cache").glob("*/v-*")) == [version]  # reused, not rebuilt
    built, reused = (
        load_checkpoint(tmp_path / run / "checkpoints/last.pt") for run in ("builds", "reuses")
    )
    assert_same_state(built, reused)


def test_two_torchrun_processes_build_the_cache_once_and_train_on_it(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=4)
    log = tmp_path / "decoded.log"
    cached = [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.cache=true",
        f"dataset.cache_dir={tmp_path / 'cache'}",
        "dataset.batch_size=2",
        "trainer.max_epochs=1",
        "pretrained=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = run_python(
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "tests.decode_counting_run", *cached),
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DECODE_LOG": str(log)},
    )
    assert result.returncode == 0, result.stderr
    builders = log.read_text().split()
    assert len(builders) == 12 and len(set(builders)) == 1  # every image once, by one rank
    assert (tmp_path / "run/checkpoints/last.pt").is_file()
