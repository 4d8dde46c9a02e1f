"""File-backed datasets on files the tests write: image folders of PNGs, MNIST's idx format."""

import pytest
import torch

from src.data import image_folder as image_folder_module
from src.data import torchvision_datasets
from src.data.transforms import preprocess_for
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN
from src.models.lenet import LeNetSource
from tests.conftest import built_as_a_run_builds
from tests.generated_data import COLOURS, write_idx, write_image_folder

# The builders as the config files call them: the schema's defaults for what a test leaves out.
image_folder = built_as_a_run_builds(image_folder_module.image_folder)
cifar10, mnist, fashion_mnist = (
    built_as_a_run_builds(getattr(torchvision_datasets, name))
    for name in ("cifar10", "mnist", "fashion_mnist")
)

CLASSES = sorted(COLOURS)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("photos"), per_class=10)


@pytest.fixture(scope="module")
def split_photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    write_image_folder(root / "train", per_class=6, seed=1)
    write_image_folder(root / "val", per_class=3, seed=2)
    return root


@pytest.fixture(scope="module")
def photos_with_test(tmp_path_factory):
    root = tmp_path_factory.mktemp("with_test")
    for split, per_class, seed in (("train", 4, 1), ("val", 2, 2), ("test", 3, 3)):
        write_image_folder(root / split, per_class=per_class, seed=seed)
    return root


def files(subset) -> list[str]:
    return [subset.dataset.samples[i][0] for i in subset.indices]


def test_one_folder_is_split_by_fraction_stratified_and_fixed_by_the_seed(photos):
    data = image_folder(root=str(photos), batch_size=4, seed=0, val_fraction=0.3)
    train, val = data.train_loader.dataset, data.val_loader.dataset
    assert data.class_names == CLASSES and data.num_classes == 3 and data.in_channels == 3
    assert len(val) == 9 and len(train) == 21  # 3 of each class's 10
    val_labels = torch.tensor([val.dataset.targets[i] for i in val.indices])
    assert torch.bincount(val_labels).tolist() == [3, 3, 3]
    assert not set(files(train)) & set(files(val))
    again = image_folder(root=str(photos), batch_size=4, seed=0, val_fraction=0.3)
    other = image_folder(root=str(photos), batch_size=4, seed=1, val_fraction=0.3)
    assert files(again.val_loader.dataset) == files(val)
    assert files(other.val_loader.dataset) != files(val)


def test_split_seed_fixes_a_folders_split_while_the_seed_still_orders_the_batches(photos):
    runs = [
        image_folder(root=str(photos), batch_size=30, seed=seed, split_seed=0, augment=False)
        for seed in (1, 2)
    ]
    assert files(runs[0].val_loader.dataset) == files(runs[1].val_loader.dataset)
    assert files(runs[0].val_loader.dataset) != files(
        image_folder(root=str(photos), batch_size=4, seed=1).val_loader.dataset
    )
    firsts = [next(iter(run.train_loader))[1].tolist() for run in runs]
    assert sorted(firsts[0]) == sorted(firsts[1]) and firsts[0] != firsts[1]


def test_train_and_val_folders_are_used_as_given(split_photos):
    data = image_folder(root=str(split_photos), batch_size=4, seed=0)
    assert len(data.train_loader.dataset) == 18 and len(data.val_loader.dataset) == 9
    images, labels = next(iter(data.val_loader))
    # No model metadata: LeNet's 32 pixels, ImageNet's statistics.
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    blue = images[labels == CLASSES.index("blue")]
    assert (blue[:, 2].mean(dim=(1, 2)) > blue[:, 0].mean(dim=(1, 2))).all()


def test_a_test_folder_beside_train_and_val_is_the_test_split(split_photos, photos_with_test):
    assert image_folder(root=str(split_photos), batch_size=4, seed=0).test_loader is None
    data = image_folder(root=str(photos_with_test), batch_size=4, seed=0)
    test = data.test_loader.dataset
    assert len(test) == 9 and test.classes == CLASSES and test.root.endswith("test")
    # As evaluated: the same images every time, no augmentation.
    first = [images for images, _ in data.test_loader]
    assert all(
        torch.equal(a, b) for a, b in zip(first, [i for i, _ in data.test_loader], strict=True)
    )
    assert data.input == {
        "channels": 3,
        "size": 32,
        "resize": 37,
        "crop": 32,
        "interpolation": "bilinear",
        "mean": list(IMAGENET_MEAN),
        "std": [0.229, 0.224, 0.225],
    }


def test_a_torchvision_model_brings_its_weights_size_and_normalisation(split_photos):
    pre = preprocess_for("resnet50", None, native=None)
    assert (pre.size, pre.resize, pre.mean, pre.channels) == (224, 232, IMAGENET_MEAN, 3)
    v1 = preprocess_for("ResNet50_Weights.IMAGENET1K_V1", None, native=None)
    assert (v1.size, v1.resize) == (224, 256)
    smaller = preprocess_for("resnet18", 64, native=None)
    assert (smaller.size, smaller.resize) == (64, round(64 * 256 / 224))
    data = image_folder(root=str(split_photos), batch_size=2, seed=0, transform_from="resnet18")
    assert next(iter(data.train_loader))[0].shape == (2, 3, 224, 224)
    assert next(iter(data.val_loader))[0].shape == (2, 3, 224, 224)


def test_training_images_are_augmented_and_evaluation_images_are_not(split_photos):
    def first_image(data):
        loader = data.train_loader
        return loader.dataset[0][0]

    augmented = image_folder(root=str(split_photos), batch_size=4, seed=0)
    assert not torch.equal(first_image(augmented), first_image(augmented))
    plain = image_folder(root=str(split_photos), batch_size=4, seed=0, augment=False)
    assert torch.equal(first_image(plain), first_image(plain))
    train_set = plain.train_loader.dataset
    unaugmented = plain.val_loader.dataset.transform(train_set.loader(train_set.samples[0][0]))
    assert torch.equal(first_image(plain), unaugmented)


@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true")
def test_loader_settings_reach_the_data_loaders(split_photos):
    data = image_folder(
        root=str(split_photos),
        batch_size=4,
        seed=0,
        num_workers=1,
        pin_memory=True,
        persistent_workers=True,
    )
    for loader in (data.train_loader, data.val_loader):
        assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (1, True, True)
    labels = torch.cat([labels for _, labels in data.val_loader])
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(("builder", "folder"), [(mnist, "MNIST"), (fashion_mnist, "FashionMNIST")])
def test_mnist_formats_load_from_idx_files(tmp_path, builder, folder):
    write_idx(tmp_path, folder, n_train=40, n_test=20)
    data = builder(root=str(tmp_path), download=False, batch_size=8, seed=0, val_fraction=0.25)
    images, labels = next(iter(data.test_loader))  # the official test images: t10k-*
    # Without a model's size, the dataset's own 28 pixels; LeNet's source asks for 32.
    assert images.shape == (8, 1, 28, 28) and data.in_channels == 1 and data.num_classes == 10
    lenet = builder(root=str(tmp_path), seed=0, model_preprocess=LeNetSource().preprocess())
    assert next(iter(lenet.test_loader))[0].shape[-2:] == (32, 32)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]  # the file's order
    assert len(data.test_loader.dataset) == 20
    # Validation is a stratified share of the training images, never the test images.
    train, val = data.train_loader.dataset, data.val_loader.dataset
    assert (len(train), len(val)) == (30, 10) and not set(train.indices) & set(val.indices)
    assert sorted(label for _, label in val) == list(range(10))
    shared = [
        builder(root=str(tmp_path), seed=seed, split_seed=0, val_fraction=0.25).val_loader
        for seed in (1, 2)
    ]
    assert shared[0].dataset.indices == shared[1].dataset.indices  # one val share for both
    # The band written for digit 0 (rows 0-5 of 28) is the brightest part of its image.
    assert images[0, 0, :6].mean() > images[0, 0, 14:].mean() + 1
    rgb = builder(
        root=str(tmp_path), download=False, batch_size=8, seed=0, transform_from="resnet18"
    )
    assert rgb.in_channels == 3
    assert next(iter(rgb.train_loader))[0].shape == (8, 3, 224, 224)


def test_a_missing_torchvision_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(
        GroupwiseError, match=r"dataset.root=.*CIFAR10 not found.*dataset.download=true"
    ):
        cifar10(root=str(tmp_path), download=False, batch_size=16, seed=0)


def test_image_folder_mistakes_are_reported_together(tmp_path):
    with pytest.raises(GroupwiseError) as err:
        image_folder(root=str(tmp_path / "nope"), batch_size=4, seed=0, persistent_workers=True)
    assert len(err.value.problems) == 2
    assert "dataset.persistent_workers=true needs worker processes" in err.value.problems[0]
    assert "dataset.root=" in err.value.problems[1] and "no such directory" in err.value.problems[1]


def test_image_folder_layout_mistakes_are_clear_errors(tmp_path, split_photos):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GroupwiseError, match=r"dataset.root=.*empty: .*one folder per class"):
        image_folder(root=str(tmp_path / "empty"), batch_size=4, seed=0)
    mismatched = tmp_path / "mismatched"
    write_image_folder(mismatched / "train", per_class=2)
    write_image_folder(mismatched / "val", per_class=2)
    (mismatched / "val" / "red").rename(mismatched / "val" / "purple")
    with pytest.raises(GroupwiseError, match="train/ and val/ hold different classes"):
        image_folder(root=str(mismatched), batch_size=4, seed=0)
    (mismatched / "val" / "purple").rename(mismatched / "val" / "red")
    write_image_folder(mismatched / "test", per_class=1)
    (mismatched / "test" / "blue").rename(mismatched / "test" / "navy")
    with pytest.raises(GroupwiseError, match="train/ and test/ hold different classes"):
        image_folder(root=str(mismatched), batch_size=4, seed=0)
    with pytest.raises(GroupwiseError, match=r"dataset\.transform_from=resnet19: neither"):
        image_folder(root=str(split_photos), batch_size=4, seed=0, transform_from="resnet19")


def test_digits_read_without_importing_sklearn_are_sklearns_digits():
    from sklearn.datasets import load_digits

    from src.data.digits import read_digits

    pixels, labels = read_digits()
    bunch = load_digits()
    assert (pixels == bunch.images).all() and (labels == bunch.target).all()
