"""The contract between a model source and the rest of a run: the types a source answers with.

- `Preprocess`: how the model's inputs are prepared, as its pretrained weights saw them;
- `ParameterRoles`: which parameters are the head, the embeddings, the stem, the position
  embeddings, block k of n, the final norm, and which take no weight decay;
- `roles_from_patterns` and `number_blocks`: roles from regexes on parameter names, the way
  most sources name them.

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
                f"{where}: role={role}: the model source {self.source} cannot name its {role} "
                f"({self.missing}); select the parameters with a pattern instead"
            )
        return frozenset(named)


def roles_from_patterns(
    model: nn.Module,
    source: str,
    head: str | None = None,
    embeddings: str | None = None,
    blocks: str | None = None,
    no_weight_decay: str | None = None,
    fine_blocks: str | list[tuple[str, tuple | None]] | None = None,
    final_norm: str | None = None,
) -> ParameterRoles:
    """Roles by regexes on parameter names (re.match); `blocks` captures the block number in
    its groups, and blocks are numbered 0.. in the order of their captured numbers.
    `fine_blocks`: a pattern or rules as `number_blocks` reads them; without it, the blocks."""
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
    )


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
