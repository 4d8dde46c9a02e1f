"""The device stage of uint8 batches: the same numbers as torchvision's CPU transforms, and a
batch that reaches the trainer as uint8 is trained and evaluated through it."""

import torch
from torchvision.transforms import v2

from src.data.device_augmentation import DeviceAugmentation
from src.models.source import Preprocess

PRE = Preprocess(8, 9, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), 3)


def uint8_batch(n=6, seed=0):
    return torch.randint(
        0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_evaluation_equals_torchvisions_scaling_and_normalisation():
    images = uint8_batch()
    expected = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(PRE.mean, PRE.std)])
    assert torch.equal(DeviceAugmentation(PRE, flip=False)(images), expected(images))


def test_training_flips_each_image_on_its_own_draw_from_the_seeded_generator():
    images = uint8_batch(64)
    torch.manual_seed(3)
    out = DeviceAugmentation(PRE, flip=True)(images)
    plain = DeviceAugmentation(PRE, flip=False)
    flipped = [torch.equal(o, plain(images[i : i + 1].flip(-1))[0]) for i, o in enumerate(out)]
    kept = [torch.equal(o, plain(images[i : i + 1])[0]) for i, o in enumerate(out)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54  # per image, not one choice for the whole batch
    torch.manual_seed(3)
    assert torch.equal(DeviceAugmentation(PRE, flip=True)(images), out)
