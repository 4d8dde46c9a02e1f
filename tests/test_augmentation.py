"""dataset.augment's policies and random erasing: torchvision's v2 transforms, in order, on
colour photos and grayscale digits, at their strongest settings too."""

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from timm.data import auto_augment as timm_aa
from torchvision.transforms import v2

from src.config.dataset_schema import AUGMENT_POLICIES, TorchvisionDatasetConfig
from src.data import image_folder as image_folder_module
from src.data import torchvision_datasets
from src.data.transforms import Augmentation, train_and_eval_transforms
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from src.models.lenet import LeNetSource
from src.runner import Runner
from tests.conftest import ROOT, built_as_a_run_builds, view_of
from tests.generated_data import write_idx, write_image_folder

image_folder = built_as_a_run_builds(image_folder_module.image_folder)
mnist = built_as_a_run_builds(torchvision_datasets.mnist)
PHOTO = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3)
POLICY_CLASS = {
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
    "autoaugment": v2.AutoAugment,
}


def kinds(pipeline: v2.Compose) -> list[type]:
    return [type(t) for t in pipeline.transforms]


@pytest.mark.parametrize("policy", AUGMENT_POLICIES)
def test_each_policy_follows_the_basic_crops_and_evaluation_stays_plain(policy):
    augment = Augmentation(policy, 0.0, 2, 9, view_of())
    train, evaluation = train_and_eval_transforms(PHOTO, "photo", None, augment)
    crops = {"none": [v2.Resize, v2.CenterCrop]}.get(
        policy, [v2.RandomResizedCrop, v2.RandomHorizontalFlip]
    )
    # The policy sees the RGB image (a palette or RGBA file is converted first).
    chosen = [POLICY_CLASS[policy]] if policy in POLICY_CLASS else []
    assert kinds(train) == [*crops, v2.RGB, *chosen, v2.ToImage, v2.ToDtype, v2.Normalize]
    assert kinds(evaluation) == [
        v2.Resize,
        v2.CenterCrop,
        v2.RGB,
        v2.ToImage,
        v2.ToDtype,
        v2.Normalize,
    ]


@pytest.mark.parametrize(("value", "means"), [(True, "basic"), ("True", "basic"), (False, "none")])
def test_true_and_false_keep_meaning_basic_and_none(value, means):
    assert Augmentation(value, 0.0, 2, 9, view_of()).name == means
    as_given = train_and_eval_transforms(
        PHOTO, "photo", None, Augmentation(value, 0.0, 2, 9, view_of())
    )
    named = train_and_eval_transforms(
        PHOTO, "photo", None, Augmentation(means, 0.0, 2, 9, view_of())
    )
    assert kinds(as_given[0]) == kinds(named[0])


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment", "autoaugment"])
def test_the_policies_at_full_strength_run_on_colour_and_grayscale_images(policy, mode):
    """timm's RandAugment asks Pillow for 0-bit posterization at high magnitudes and raises;
    torchvision's posterizes to 4 bits at least."""
    channels = 3 if mode == "RGB" else 1
    pre = Preprocess(28, 28, IMAGENET_MEAN[:channels], IMAGENET_STD[:channels], channels)
    train, _ = train_and_eval_transforms(
        pre, "small", 28, Augmentation(policy, 0.0, 4, 30, view_of(TorchvisionDatasetConfig))
    )
    torch.manual_seed(0)
    image = Image.new(mode, (28, 28), "white" if mode == "L" else (200, 30, 90))
    outputs = [train(image) for _ in range(60)]  # every op is drawn at least once, likely
    assert all(out.shape == (channels, 28, 28) for out in outputs)
    assert len({out.sum().item() for out in outputs}) > 10


def test_random_erasing_comes_last_and_erases_to_the_mean(tmp_path):
    train, _ = train_and_eval_transforms(
        PHOTO, "photo", None, Augmentation("basic", 1.0, 2, 9, view_of())
    )
    assert isinstance(train.transforms[-1], v2.RandomErasing) and train.transforms[-1].p == 1.0
    image = Image.new("RGB", (40, 40), (250, 250, 250))
    out = train(image)
    erased = (out == 0).all(0)  # 0 after normalisation: the mean colour
    assert 0 < erased.float().mean() < 0.5


def test_the_options_reach_the_file_datasets(tmp_path):
    write_image_folder(tmp_path / "photos", per_class=4)
    data = image_folder(
        root=str(tmp_path / "photos"),
        batch_size=4,
        seed=0,
        augment="randaugment",
        random_erasing=0.25,
    )
    train = data.train_loader.dataset.dataset.transform
    assert v2.RandAugment in kinds(train) and isinstance(train.transforms[-1], v2.RandomErasing)
    write_idx(tmp_path, "MNIST", n_train=20, n_test=10)
    lenet = LeNetSource().preprocess()  # the default model names its size: 32
    digits = mnist(
        root=str(tmp_path), batch_size=4, seed=0, augment="autoaugment", model_preprocess=lenet
    )
    images, _ = next(iter(digits.train_loader))
    assert images.shape == (4, 1, 32, 32)  # LeNet's size, from its source
    policy = next(
        t
        for t in digits.train_loader.dataset.dataset.transform.transforms
        if isinstance(t, v2.AutoAugment)
    )
    assert policy.policy == v2.AutoAugmentPolicy.CIFAR10  # small images: CIFAR-10's policy


def test_an_unknown_policy_is_one_clear_line(make_cfg, tmp_path):
    cfg = make_cfg("dataset=image_folder", f"dataset.root={tmp_path}", "dataset.augment=randaug")
    with pytest.raises(GroupwiseError) as err:
        Runner(cfg, tmp_path).check()
    (problem,) = err.value.problems
    assert problem.startswith("dataset.augment=randaug: must be one of none, basic, randaugment")


def test_a_run_trained_before_the_policies_existed_still_evaluates(make_cfg, tmp_path):
    from omegaconf import OmegaConf

    from src.trained_run import TrainedRun

    write_image_folder(tmp_path / "photos", per_class=4)
    cfg = make_cfg("dataset=image_folder", f"dataset.root={tmp_path / 'photos'}", "pretrained=none")
    old = OmegaConf.to_container(cfg, resolve=True)
    for key in ("random_erasing", "randaugment_num_ops", "randaugment_magnitude", "mixup_alpha"):
        del old["dataset"][key]
    old["dataset"]["augment"] = True  # as such a run's checkpoint holds it
    run = TrainedRun(tmp_path, OmegaConf.create(old), "best", {}, epoch=1, global_step=1)
    data = run.data()
    assert len(data.val_loader.dataset) > 0 and data.train_on_device is None


@pytest.mark.parametrize("experiment", ["vit_finetune", "convnet_finetune"])
def test_the_recipes_randaugment_is_timms_m9_on_torchvisions_scale(experiment):
    """MAE's and ConvNeXt's `rand-m9-mstd0.5-inc1` count magnitude 9 of timm's 0-10;
    torchvision's RandAugment counts 0-30, so the recipes set 27: each operation's strength as
    timm's at m9 (by both libraries' own tables of operation strengths)."""
    config = OmegaConf.load(ROOT / "conf" / "experiment" / f"{experiment}.yaml")
    magnitude = config.dataset.randaugment_magnitude
    space = v2.RandAugment._AUGMENTATION_SPACE  # name -> (strengths of 31 bins, signed)
    size, hparams = 32, {"translate_pct": 0.45}
    timm_m9 = {
        "Rotate": timm_aa._rotate_level_to_arg(9, hparams)[0],
        "ShearX": timm_aa._shear_level_to_arg(9, hparams)[0],
        "TranslateX": timm_aa._translate_rel_level_to_arg(9, hparams)[0] * size,
        "Brightness": timm_aa._enhance_increasing_level_to_arg(9, hparams)[0] - 1,
    }
    for name, strength in timm_m9.items():
        ours = float(space[name][0](31, size, size)[magnitude])
        assert ours == pytest.approx(abs(strength), rel=0.01), name
