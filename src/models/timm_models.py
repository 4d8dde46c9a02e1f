"""Any timm model by name (`model=timm model.name=<name>`), e.g. vit_small_patch16_224,
convnext_tiny, efficientnet_b0, resnet50.a1_in1k; timm is the `timm` extra.

timm's models carry their own facts, and this source asks them: `pretrained_cfg` (input size,
crop, normalisation, the classifier's and the first convolution's names, whether the input size
is fixed), `group_matcher` (stem and blocks) and `no_weight_decay`."""

import math
import re

from torch import nn

from src.errors import GroupwiseError
from src.models.contract import ParameterRoles, Preprocess, first_conv, number_blocks
from src.models.extras import import_extra
from src.models.source import ModelSource

# PIL's resampling filters by name: what evaluation can use.
PIL_FILTERS = ("nearest", "lanczos", "bilinear", "bicubic", "box", "hamming")
# timm's name for absolute position embeddings in every architecture that has them (ViT, DeiT,
# BEiT, EVA, ...): its own checkpoint filters resample the tensor by this name.
POSITION_EMBEDDINGS = re.compile(r"(?:.*\.)?pos_embed$")


class TimmSource(ModelSource):
    """`timm.create_model` with random weights, for the run's classes and input channels
    (timm's `num_classes`, `in_chans`); pretrained weights come in through `pretrained`.

    `image_size` reaches the architectures whose input size is fixed at construction (timm
    marks them `fixed_input_size`: ViTs, whose position embeddings are sized for it), so a ViT
    made for 224 pixels trains on 32 when asked. Further keys are timm's own arguments
    (`+model.drop_rate=0.1`).
    """

    library = "timm"
    transform_prefix = "timm:"

    def __init__(self, name: str, image_size: int | None = None, **kwargs):
        self.timm = import_extra("timm", "timm", "model=timm")
        self.name = name
        self.pretrained_cfg = _pretrained_cfg(self.timm, name, "model.name") or {}
        # timm's own further arguments of create_model: `img_size` where the input size is
        # fixed, then the user's keys; an export records them, so timm alone rebuilds the model.
        self.create_arguments = dict(kwargs)
        if image_size is not None and self.pretrained_cfg.get("fixed_input_size", False):
            self.create_arguments.setdefault("img_size", image_size)

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        try:
            return self.timm.create_model(
                self.name,
                pretrained=False,
                num_classes=num_classes,
                in_chans=in_channels,
                **self.create_arguments,
            )
        except TypeError as err:  # a key under model that the architecture does not take
            raise GroupwiseError(
                f"model.name={self.name}: timm.create_model: {err}; check the keys under model"
            ) from None

    def preprocess(self) -> Preprocess | None:
        return _preprocess(self.pretrained_cfg) if self.pretrained_cfg else None

    @classmethod
    def preprocess_named(cls, name: str) -> Preprocess:
        timm = import_extra("timm", "timm", f"dataset.transform_from={cls.transform_prefix}{name}")
        where = f"dataset.transform_from={cls.transform_prefix}{name}"
        cfg = _pretrained_cfg(timm, name, where.partition("=")[0])
        if cfg is None:
            raise GroupwiseError(
                f"{where}: timm has no pretrained config for {name}; name a timm model (with or "
                "without a .tag), or set dataset.transform_from=null"
            )
        return _preprocess(cfg)

    def roles(self, model: nn.Module) -> ParameterRoles:
        """The classifier module (`pretrained_cfg['classifier']`, as a top-level module: timm's
        ConvNeXt `head` holds its final norm too), the stem and blocks of `group_matcher` (by
        stage where it has stages; every block with `coarse=False`, as timm's layer decay
        numbers them), the final norm it joins to the last block, `no_weight_decay()`, the first
        convolution (`pretrained_cfg['first_conv']`, which timm's own loader adapts to other
        input channels) as the stem, and the position embeddings by timm's name for them."""
        names = [name for name, _ in model.named_parameters()]
        classifier = self.pretrained_cfg.get("classifier")
        head = None if classifier is None else classifier.split(".")[0] + "."
        stem, blocks, final_norm = _grouped(model, names, coarse=True)
        _, fine_blocks, fine_final_norm = _grouped(model, names, coarse=False)
        if fine_final_norm is not None:  # a ConvNeXt's `norm_pre` has a rule when fine only
            final_norm = (final_norm or frozenset()) | fine_final_norm
        skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
        return ParameterRoles(
            f"timm ({self.name})",
            head=None if head is None else frozenset(n for n in names if n.startswith(head)),
            embeddings=stem,
            blocks=blocks,
            fine_blocks=fine_blocks,
            final_norm=final_norm,
            no_weight_decay=frozenset(n for n in names if n in skip),
            stem=_stem(model, names, self.pretrained_cfg.get("first_conv")),
            position_embeddings=frozenset(n for n in names if POSITION_EMBEDDINGS.match(n)),
            missing=f"timm's {self.name} has no group_matcher or classifier for it",
        )

    def builder_arguments(self) -> dict:
        return self.create_arguments

    def set_drop_path_rate(self, rate: float) -> None:
        """timm's `drop_path_rate` (ViTs, ConvNeXts, ResNets, EfficientNets, ... take it; a
        model that does not stops at build with timm's own message)."""
        self.create_arguments["drop_path_rate"] = rate


def _stem(model: nn.Module, names: list[str], convs: str | tuple[str, ...] | None):
    """The parameters of the module(s) `pretrained_cfg['first_conv']` names (one name, or a
    tuple of them); the first convolution for a model without a pretrained config."""
    if not convs:
        return first_conv(model)
    owners = (convs,) if isinstance(convs, str) else tuple(convs)
    return frozenset(n for n in names if n.rpartition(".")[0] in owners)


def _grouped(model: nn.Module, names: list[str], coarse: bool):
    """The stem, the numbered blocks and the final norm by timm's `group_matcher(coarse)`; each
    None where the model has no matcher. A name the stem matches is in no block (timm tries
    the stem's rule first)."""
    if not hasattr(model, "group_matcher"):
        return None, None, None
    matcher = model.group_matcher(coarse=coarse)
    stem, rules = matcher.get("stem"), matcher.get("blocks")
    stem_names = None if stem is None else frozenset(n for n in names if re.match(stem, n))
    if not rules:
        return stem_names, None, None
    if isinstance(rules, str):
        rules = [(rules, None)]
    blocks, final_norm = number_blocks([n for n in names if n not in (stem_names or ())], rules)
    return stem_names, blocks, final_norm


def _pretrained_cfg(timm, name: str, key: str) -> dict | None:
    """timm's metadata of the model (and tag): input size, whether it is fixed, normalisation;
    None for a model without."""
    if not timm.is_model(name.partition(".")[0]):
        close = timm.list_models(f"*{name.partition('.')[0][:6]}*")[:6]
        raise GroupwiseError(
            f"{key}={name}: not a timm model; timm.list_models() lists them"
            + (f", e.g. {', '.join(close)}" if close else "")
        )
    cfg = timm.models.get_pretrained_cfg(name)
    return None if cfg is None else cfg.to_dict()


def _preprocess(pretrained_cfg: dict) -> Preprocess:
    """As timm's own `resolve_data_config` reads a pretrained config: the evaluation resize is
    the size / crop_pct."""
    from timm.data import resolve_data_config

    data = resolve_data_config({}, pretrained_cfg=pretrained_cfg)
    channels, _, size = data["input_size"]
    interpolation = data["interpolation"]
    return Preprocess(
        size=size,
        resize=math.floor(size / data["crop_pct"]),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        channels=channels,
        # timm's `random` picks one per image; evaluation needs one: the common one.
        interpolation=interpolation if interpolation in PIL_FILTERS else "bilinear",
    )
