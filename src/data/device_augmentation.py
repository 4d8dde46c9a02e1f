"""What a batch of uint8 images gets on the training device, after the loader's crop: the
flips, the colour, the jitter, the augmentation policy, scaling to [0, 1], normalisation and random
erasing, in the order and with the numbers of `src.data.transforms.train_and_eval_transforms`
after its crops, each image with its own random draws.

Loaders that yield uint8 images (a decoded cache) hand the device these batches, so the
worker processes only copy and crop, and the float work runs where the model runs. Random
draws come from torch's global generator on the CPU, which the run seeds and every checkpoint
saves and restores, so a resumed run draws what an uninterrupted one would (on any device).

Policies are torchvision's v2 ones (RandAugment, TrivialAugmentWide, AutoAugment with
ImageNet's policy: the cache serves image folders, which are photos), not a port. Applied to
a batch tensor, a v2 policy draws ONE operation for the whole batch; so each image's
operations and magnitudes are drawn here from the policy's own augmentation space, in the
order its `forward` draws them for one image, and applied by the policy's own kernel method
(`_apply_image_or_video_transform`): on an accelerator with torch's kernels, once per group
of images that drew the same operation and magnitude; on the CPU with PIL's, image by image,
as the CPU pipeline does (`PerImagePolicy` says why). kornia was not taken: it is not a
dependency, its auto-augment policies draw one sub-policy per batch too, and torchvision's
are the ones the CPU path runs, so both paths draw from the same spaces. Random erasing
draws each image's box by `v2.RandomErasing`'s own `make_params` and erases all boxes in one
masked fill.

Cost on the CPU (the 2-core VM, 2 torch threads, shared: two runs at load 2 and 3), per
batch of 64 uint8 images at 224 px, 3 channels: none (scale and normalise) 15-50 ms, basic
(+flip) 23-75 ms, random_erasing=0.25 +20-40 ms, randaugment(2, 9) 120-160 ms,
trivialaugment 75-120 ms, autoaugment 65-110 ms.
"""

from collections import defaultdict

import torch

from src.data.device_erasing import PerImageErasing
from src.data.transforms import Augmentation
from src.models.contract import Preprocess

# Interpolations torchvision's tensor kernels have; the PIL-only filters (lanczos, box,
# hamming) rotate and shear with bicubic, the nearest smooth one.
TENSOR_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
# Each image's operations: (transform id, magnitude) in the order they apply.
Program = list[tuple[str, float]]


def tensor_interpolation(name: str) -> str:
    """`name` where torch's kernels have it, else bicubic."""
    return name if name in TENSOR_INTERPOLATIONS else "bicubic"


def _magnitude(policy, transform_id: str, bins: int, index, height: int, width: int) -> float:
    """The magnitude of one drawn operation, as the v2 policies' `forward` draws it: a bin
    (`index`, or one drawn when None), then a sign for the signed operations."""
    magnitudes_fn, signed = policy._AUGMENTATION_SPACE[transform_id]
    magnitudes = magnitudes_fn(bins, height, width)
    if magnitudes is None:
        return 0.0
    if index is None:
        index = int(torch.randint(bins, ()))
    magnitude = float(magnitudes[index])
    if signed and torch.rand(()) <= 0.5:
        magnitude *= -1
    return magnitude


def draw_program(policy, height: int, width: int) -> Program:
    """One image's operations, drawn from the global generator in the order the policy's own
    `forward` draws them for one image."""
    from torchvision.transforms import v2

    if isinstance(policy, v2.AutoAugment):
        chosen = policy._policies[int(torch.randint(len(policy._policies), ()))]
        program = []
        for transform_id, probability, index in chosen:
            if torch.rand(()) <= probability:
                program.append(
                    (transform_id, _magnitude(policy, transform_id, 10, index, height, width))
                )
        return program
    if isinstance(policy, v2.TrivialAugmentWide):
        transform_id, _ = policy._get_random_item(policy._AUGMENTATION_SPACE)
        bins = policy.num_magnitude_bins
        return [(transform_id, _magnitude(policy, transform_id, bins, None, height, width))]
    program = []  # RandAugment: num_ops operations, each at the one magnitude
    for _ in range(policy.num_ops):
        transform_id, _ = policy._get_random_item(policy._AUGMENTATION_SPACE)
        magnitude = _magnitude(
            policy, transform_id, policy.num_magnitude_bins, policy.magnitude, height, width
        )
        program.append((transform_id, magnitude))
    return program


class PerImagePolicy:
    """A v2 policy on uint8 images [batch, channels, height, width], each image its own draws.

    On an accelerator, each operation runs once per group of images that drew it at the
    same magnitude (torch's kernels: a few launches a batch, not one per image). On the CPU,
    each image runs through PIL's kernels, as the CPU pipeline's workers do: 30x faster there
    than torch's on single images (80 ms against 2.6 s for RandAugment(2, 9) on 64 images at
    224 px), and the CPU pipeline's numbers to the bit. `pil_on_cpu=False`: torch's kernels
    everywhere (what an accelerator computes, tested on the CPU)."""

    def __init__(self, policy, pil_on_cpu: bool = True):
        self.policy, self.pil_on_cpu = policy, pil_on_cpu

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        programs = [draw_program(self.policy, height, width) for _ in range(len(images))]
        if images.device.type == "cpu" and self.pil_on_cpu:
            return self._with_pil(images, programs)
        images = images.clone()
        for step in range(max(map(len, programs), default=0)):
            groups = defaultdict(list)  # (transform id, magnitude) -> the images that drew it
            for index, program in enumerate(programs):
                if step < len(program) and program[step][0] != "Identity":
                    groups[program[step]].append(index)
            for (transform_id, magnitude), indices in groups.items():
                chosen = torch.tensor(indices, device=images.device)
                images[chosen] = self._apply(images[chosen], transform_id, magnitude)
        return images

    def _apply(self, images, transform_id: str, magnitude: float):
        """The policy's own kernel for the operation: on tensors or on a PIL image."""
        return self.policy._apply_image_or_video_transform(
            images,
            transform_id,
            magnitude,
            interpolation=self.policy.interpolation,
            fill=self.policy._fill,
        )

    def _with_pil(self, images: torch.Tensor, programs: list[Program]) -> torch.Tensor:
        def run(index, image):
            for transform_id, magnitude in programs[index]:
                image = self._apply(image, transform_id, magnitude)
            return image

        changed = [
            index
            for index, program in enumerate(programs)
            if any(transform_id != "Identity" for transform_id, _ in program)
        ]
        return each_with_pil(images, changed, run)


def each_with_pil(images: torch.Tensor, indices: list[int], run) -> torch.Tensor:
    """uint8 `images` [batch, channels, height, width] with `run(index, PIL image)` applied
    to the images at `indices`, as the CPU pipeline's workers apply it."""
    import numpy as np
    from PIL import Image

    # numpy's copies between [C, H, W] and PIL's [H, W, C]: torch's strided uint8 copy
    # of one image is 100x slower.
    out = images.numpy().copy()
    for index in indices:
        array = out[index].transpose(1, 2, 0)
        image = Image.fromarray(
            np.ascontiguousarray(array[..., 0] if len(out[index]) == 1 else array)
        )
        pixels = np.asarray(run(index, image))
        out[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(out)


class PerImageJitter:
    """A `v2.ColorJitter` on uint8 images [batch, channels, height, width], each image its own
    factors and order, drawn by the jitter's own `make_params` as its `forward` draws them
    for one image, and applied by its own `transform`: PIL's kernels on the CPU (the CPU
    pipeline's numbers), torch's elsewhere, image by image (continuous factors leave no
    groups to share a launch)."""

    def __init__(self, jitter, pil_on_cpu: bool = True):
        self.jitter, self.pil_on_cpu = jitter, pil_on_cpu

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        params = [self.jitter.make_params([]) for _ in range(len(images))]
        if images.device.type == "cpu" and self.pil_on_cpu:
            return each_with_pil(
                images,
                list(range(len(images))),
                lambda i, image: self.jitter.transform(image, params[i]),
            )
        return torch.stack(
            [self.jitter.transform(image, p) for image, p in zip(images, params, strict=True)]
        )


class DeviceAugmentation:
    """uint8 images [batch, channels, height, width] on any device -> normalised float32."""

    def __init__(
        self,
        pre: Preprocess,
        hflip: float = 0.0,
        vflip: float = 0.0,
        jitter: PerImageJitter | None = None,
        policy: PerImagePolicy | None = None,
        erasing: PerImageErasing | None = None,
    ):
        """`hflip`, `vflip`: each image mirrored left-right, top-bottom with these
        probabilities; `jitter`, `policy` and `erasing`: training's, when the dataset asks;
        evaluation takes none of them."""
        self.mean, self.std = list(pre.mean), list(pre.std)
        self.channels = pre.channels
        self.flips = [(p, dim) for p, dim in ((hflip, -1), (vflip, -2)) if p]
        self.jitter, self.policy, self.erasing = jitter, policy, erasing

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for p, dim in self.flips:  # v2.RandomHorizontalFlip's draw: mirrored when rand < p
            mirrored = (torch.rand(len(images)) < p).nonzero().flatten().to(images.device)
            # Only the drawn images are copied, mirrored: a share of the batch's bytes.
            images = images.index_copy(0, mirrored, images[mirrored].flip(dim))
        from torchvision.transforms.v2 import functional as F  # start-up time: when used

        if self.channels == 3 and images.shape[1] == 1:  # v2.RGB(): grayscale to colour
            images = F.grayscale_to_rgb(images)
        if self.jitter is not None:
            images = self.jitter(images)
        if self.policy is not None:
            images = self.policy(images)
        # torchvision's own kernels: the numbers of the CPU pipeline's ToDtype and Normalize,
        # on a contiguous batch (crops stored channels-last normalise ~1.6x slower as they are).
        images = F.to_dtype(images.contiguous(), torch.float32, scale=True)
        images = F.normalize(images, self.mean, self.std, inplace=True)
        return images if self.erasing is None else self.erasing(images)


def device_policy(pre: Preprocess, augmentation: Augmentation) -> PerImagePolicy | None:
    """The dataset's policy, per image (None for `none` and `basic`), as the CPU pipeline
    builds it for photos."""
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(tensor_interpolation(pre.interpolation))
    policy = {
        "randaugment": lambda: v2.RandAugment(
            augmentation.randaugment_num_ops,
            augmentation.randaugment_magnitude,
            interpolation=interpolation,
        ),
        "trivialaugment": lambda: v2.TrivialAugmentWide(interpolation=interpolation),
        "autoaugment": lambda: v2.AutoAugment(
            v2.AutoAugmentPolicy.IMAGENET, interpolation=interpolation
        ),
    }.get(augmentation.name)
    return None if policy is None else PerImagePolicy(policy())


def device_stages(
    pre: Preprocess, augmentation: Augmentation
) -> tuple[DeviceAugmentation, DeviceAugmentation]:
    """(training's, evaluation's) device stage for uint8 images that arrive cropped to the
    model's size: `Data.train_on_device` and `Data.eval_on_device`. augment=none: no flips
    nor jitter, as the CPU pipeline."""
    erasing = PerImageErasing(augmentation.random_erasing) if augmentation.random_erasing else None
    view, augmented = augmentation.view, augmentation.name != "none"
    jitter = view.jitter() if augmented else None
    train = DeviceAugmentation(
        pre,
        view.hflip if augmented else 0.0,
        view.vflip if augmented else 0.0,
        None if jitter is None else PerImageJitter(jitter),
        device_policy(pre, augmentation),
        erasing,
    )
    return train, DeviceAugmentation(pre)
