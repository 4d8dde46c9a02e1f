"""The contract between a model source and the rest of a run: the types a source answers with.

- `Preprocess`: how the model's inputs are prepared, as its pretrained weights saw them;
- `ParameterRoles`: which parameters are the head, the embeddings, the stem, the position
  embeddings, block k of n, the final norm, and which take no weight decay;
- `roles_from_patterns` and `number_blocks`: roles from regexes on parameter names, the way
  most sources name them;
- `generic_roles` and `first_conv`: what any model answers without a source's metadata.

Data transforms, param-group presets and pretrained loading read these types; the sources
(src/models/source.py and the libraries' modules) make them.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from src.errors import GroupwiseError

# What torchvision's ImageNet classifiers were trained on; a folder of photos without a
# model's metadata is normalised the same way.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The roles that name a set of tensors, by which `pretrained.exclude` may keep them out.
TENSOR_ROLES = ("head", "embeddings", "stem", "position_embeddings", "blocks", "final_norm")

# The names timm, torchvision and transformers give absolute position embeddings: what a
# model whose source says nothing of them (a user's own ViT) most likely copied.
CONVENTIONAL_POSITION_EMBEDDINGS = r"(?:.*\.)?(?:pos_embed|pos_embedding|position_embeddings)$"


@dataclass(frozen=True)
class Preprocess:
    """How a model's inputs are prepared. A source states what it knows: a model that fixes
    only its input size (LeNet's 32 pixels) leaves the rest None, and the dataset's own
    preprocessing fills it in (`src.data.transforms.preprocess_for`)."""

    size: int  # side of the square the model sees
    # evaluation: short side resized to this, then the centre `size` cropped; None: the
    # dataset's own ratio of resize to size
    resize: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    channels: int | None  # 3 turns grayscale images into RGB, as ImageNet weights expect
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ParameterRoles:
    """The roles of a model's parameters, by the names `named_parameters()` yields. A role the
    source cannot name is None; `missing` says why, for the one-line error."""

    source: str  # who answered: named in messages
    head: frozenset[str] | None = None
    embeddings: frozenset[str] | None = None  # stem, patch and position embeddings, tokens
    # The convolution that sees the input's channels (a ResNet's conv1, a ViT's patch
    # projection): pretrained.adapt_input_channels fits its RGB weight to the run's channels.
    stem: frozenset[str] | None = None
    # Absolute position embeddings, [1, prefix tokens + grid, width]: resampled on load to the
    # model's patch grid. Empty: the model has none.
    position_embeddings: frozenset[str] | None = None
    blocks: Mapping[str, int] | None = None  # a block's parameter -> its block, 0..num_layers-1
    # Every block on its own where `blocks` are stages (a ConvNeXt's or ResNet's residual
    # blocks, a downsample with the block after it): timm's group_matcher(coarse=False), by
    # which timm's param_groups_layer_decay decays. A ViT's are its blocks.
    fine_blocks: Mapping[str, int] | None = None
    # The norm right after the last block (a ViT's `norm`), in no block: timm's layer decay
    # puts it with the last block, groupwise's presets with the head unless a group takes it.
    final_norm: frozenset[str] | None = None
    no_weight_decay: frozenset[str] = frozenset()  # beside 1-D tensors: position embeddings, ...
    missing: str = "it has no metadata for it"

    @property
    def num_layers(self) -> int | None:
        return self.layers_of("blocks")

    def layers_of(self, role: str) -> int | None:
        """How many layers the blocks role (`blocks`, `fine_blocks`) numbers; None: unknown."""
        blocks = getattr(self, role)
        return None if not blocks else max(blocks.values()) + 1

    def members(self, role: str, where: str) -> frozenset[str]:
        """The parameters of `role` (head, embeddings, blocks), or one line saying that this
        source cannot name them."""
        named = getattr(self, role)
        if named is None:
            raise GroupwiseError(
                f"{where}: role={role}: {self.cannot_name(role)}; select the parameters with a "
                "pattern instead"
            )
        return frozenset(named)

    def cannot_name(self, role: str) -> str:
        """Why a role is None, for a one-line error that says what to do instead."""
        return f"the model source {self.source} cannot name its {role} ({self.missing})"


def roles_from_patterns(
    model: nn.Module,
    source: str,
    head: str | None = None,
    embeddings: str | None = None,
    blocks: str | None = None,
    no_weight_decay: str | None = None,
    fine_blocks: str | list[tuple[str, tuple | None]] | None = None,
    final_norm: str | None = None,
    stem: str | None = None,
    position_embeddings: str | None = None,
) -> ParameterRoles:
    """Roles by regexes on parameter names (re.match); `blocks` captures the block number in
    its groups, and blocks are numbered 0.. in the order of their captured numbers.
    `fine_blocks`: a pattern or rules as `number_blocks` reads them; without it, the blocks.
    Without `stem`, the model's first convolution; without `position_embeddings`, none."""
    names = [name for name, _ in model.named_parameters()]

    def matching(pattern: str | None) -> frozenset[str] | None:
        return None if pattern is None else frozenset(n for n in names if re.match(pattern, n))

    numbered = None if blocks is None else number_blocks(names, [(blocks, None)])[0]
    if isinstance(fine_blocks, str):
        fine_blocks = [(fine_blocks, None)]
    return ParameterRoles(
        source,
        head=matching(head),
        embeddings=matching(embeddings),
        blocks=numbered,
        fine_blocks=numbered if fine_blocks is None else number_blocks(names, fine_blocks)[0],
        final_norm=matching(final_norm),
        no_weight_decay=matching(no_weight_decay) or frozenset(),
        stem=first_conv(model) if stem is None else matching(stem),
        position_embeddings=matching(position_embeddings) or frozenset(),
    )


def generic_roles(
    model: nn.Module, source: str, missing: str = "it has no metadata for it"
) -> ParameterRoles:
    """What any model answers without a source's metadata (a user's own `nn.Module`): its first
    convolution as the stem, and the position embeddings under the libraries' conventional
    names; its head, embeddings and blocks are unknown (`missing` says why)."""
    names = [name for name, _ in model.named_parameters()]
    return ParameterRoles(
        source,
        stem=first_conv(model),
        position_embeddings=frozenset(
            n for n in names if re.match(CONVENTIONAL_POSITION_EMBEDDINGS, n)
        ),
        missing=missing,
    )


def first_conv(model: nn.Module) -> frozenset[str]:
    """The parameters of the model's first convolution in definition order: the stem of nearly
    every vision model (none: the model has no convolution)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            return frozenset(
                f"{name}.{p}" if name else p for p, _ in module.named_parameters(recurse=False)
            )
    return frozenset()


# timm's MATCH_PREV_GROUP: a rule whose fixed id is this joins the layer before it.
JOINS_PREVIOUS = 99999


def number_blocks(
    names: list[str], rules: list[tuple[str, tuple | None]]
) -> tuple[dict[str, int], frozenset[str]]:
    """Parameter -> block number for the names a rule (regex, fixed ids or None) matches, as
    timm's `group_with_matcher` numbers layers: by the captured numbers then the rule's fixed
    ids, ranked (`layer1..layer4` are blocks 0..3; a ConvNeXt's `downsample`, fixed `(0,)`,
    joins block 0 of its stage); a rule fixed at timm's 99999 joins the block before it. The
    names that join the last block so (timm's final norm) come apart, as the final norm."""
    keys = {}
    for name in names:
        for pattern, fixed in rules:
            match = re.match(pattern, name)
            if match:
                ids = (*(int(g) for g in match.groups() if g is not None), *(fixed or ()))
                if ids:  # a rule that neither captures nor fixes an id numbers nothing
                    keys[name] = ids
                break
    rank, layer = {}, -1
    for ids in sorted(set(keys.values())):
        if layer < 0 or ids[-1] != JOINS_PREVIOUS:
            layer += 1
        rank[ids] = layer
    last = max((rank[ids] for ids in keys.values() if ids[-1] != JOINS_PREVIOUS), default=None)
    final = {n for n, ids in keys.items() if ids[-1] == JOINS_PREVIOUS and rank[ids] == last}
    return {n: rank[ids] for n, ids in keys.items() if n not in final}, frozenset(final)
