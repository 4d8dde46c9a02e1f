import pytest
import torch

from src.data import digits as digits_module
from src.errors import GroupwiseError
from tests.conftest import built_as_a_run_builds

# The builder as the config files call it: the schema's defaults for what a test leaves out.
digits = built_as_a_run_builds(digits_module.digits)


def keys(images) -> set[bytes]:
    return {x.numpy().tobytes() for x in images}


def all_of(loader):
    images, labels = zip(*loader.dataset, strict=True)
    return torch.stack(images), torch.stack(labels)


def test_digits_are_real_resized_scaled_and_split_without_overlap():
    data = digits(classes=list(range(10)), batch_size=32, seed=0, test_fraction=0.0)
    train_x, train_y = all_of(data.train_loader)
    val_x, val_y = all_of(data.val_loader)
    assert len(train_y) + len(val_y) == 1797
    assert train_x.shape[1:] == (1, 32, 32) and data.in_channels == 1
    assert train_x.min() >= 0.0 and train_x.max() <= 1.0
    assert abs(len(val_y) / 1797 - 0.2) < 0.01
    assert not keys(train_x) & keys(val_x)  # no image in both splits


def test_split_is_fixed_by_the_seed():
    first = all_of(digits(classes=[5, 6], batch_size=16, seed=1).val_loader)[0]
    again = all_of(digits(classes=[5, 6], batch_size=16, seed=1).val_loader)[0]
    other = all_of(digits(classes=[5, 6], batch_size=16, seed=2).val_loader)[0]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_split_seed_fixes_the_split_and_the_shots_across_seeds():
    runs = [
        digits(classes=[5, 6], batch_size=16, seed=seed, split_seed=0, shots_per_class=4)
        for seed in (1, 2)
    ]
    for split in ("train_loader", "val_loader", "test_loader"):
        first, other = (all_of(getattr(data, split))[0] for data in runs)
        assert keys(first) == keys(other)
    own = digits(classes=[5, 6], batch_size=16, seed=1)  # split_seed null: the run's seed
    assert keys(all_of(runs[0].val_loader)[0]) != keys(all_of(own.val_loader)[0])


def test_classes_are_remapped_in_the_order_given():
    data = digits(classes=[9, 5], batch_size=16, seed=0)
    labels = all_of(data.train_loader)[1]
    assert set(labels.tolist()) == {0, 1} and data.num_classes == 2
    assert data.class_names == ["9", "5"]
    nines = all_of(digits(classes=[9, 4], batch_size=16, seed=0).train_loader)
    # The images labelled 0 are nines, whatever the other class (one class alone is refused).
    assert keys(all_of(data.train_loader)[0][labels == 0]) == keys(nines[0][nines[1] == 0])


def test_few_shot_subsets_are_nested_and_exact():
    five = all_of(digits(classes=[5, 6, 7], batch_size=16, seed=0, shots_per_class=5).train_loader)
    twenty = all_of(
        digits(classes=[5, 6, 7], batch_size=16, seed=0, shots_per_class=20).train_loader
    )
    assert torch.bincount(five[1]).tolist() == [5, 5, 5]
    assert keys(five[0]) <= keys(twenty[0])


def test_more_shots_than_a_class_has_is_a_clear_error():
    # Each option's own range is the schema's (tests/test_bad_inputs.py); this needs the data.
    with pytest.raises(GroupwiseError, match=r"dataset\.shots_per_class=1000: digit 5 has only"):
        digits(classes=[5, 6], batch_size=16, seed=0, shots_per_class=1000)


def test_a_test_split_is_held_out_without_changing_val_or_the_first_training_shots():
    without = digits(classes=[5, 6, 7], batch_size=16, seed=0, test_fraction=0.0)
    data = digits(classes=[5, 6, 7], batch_size=16, seed=0, test_fraction=0.2)
    assert without.test_loader is None
    train, val, test = (
        all_of(data.train_loader),
        all_of(data.val_loader),
        all_of(data.test_loader),
    )
    assert len(train[1]) + len(val[1]) + len(test[1]) == len(all_of(without.train_loader)[1]) + len(
        val[1]
    )
    assert torch.equal(
        val[0], all_of(without.val_loader)[0]
    )  # val is the run's without a test split
    assert not keys(test[0]) & keys(train[0]) and not keys(test[0]) & keys(val[0])
    assert (
        torch.bincount(test[1]).tolist() == torch.bincount(val[1]).tolist()
    )  # stratified: 20% each
    assert keys(
        all_of(digits(classes=[5, 6, 7], batch_size=16, seed=1, test_fraction=0.2).test_loader)[0]
    ) != keys(test[0])
    shots = [
        digits(
            classes=[5, 6, 7], batch_size=16, seed=0, shots_per_class=5, test_fraction=f
        ).train_loader
        for f in (0, 0.2)
    ]
    assert torch.equal(all_of(shots[0])[0], all_of(shots[1])[0])


def test_val_and_test_fractions_must_leave_training_images():
    with pytest.raises(
        GroupwiseError, match=r"val_fraction=0.5 and dataset.test_fraction=0.5 leave no training"
    ):
        digits(classes=[5, 6], batch_size=16, seed=0, val_fraction=0.5, test_fraction=0.5)


def test_the_default_run_has_a_test_split(make_cfg):
    from src.checks import check_run
    from src.data.build import build_data

    cfg = make_cfg()
    data = build_data(cfg.dataset, 0, check_run(cfg).source)
    assert len(data.test_loader.dataset) == 179 and len(data.val_loader.dataset) == 179
