"""A model source is one object that the rest of a run asks: a source defined here, in a test
file, with no other edit to groupwise, is built, prepares the dataset's images, places its
parameters for the presets, and writes and describes its export; and the layer-decay presets
count the model's own layers, whatever its depth."""

import json

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from src.data.transforms import preprocess_for
from src.errors import GroupwiseError
from src.models.contract import Preprocess, roles_from_patterns
from src.models.source import ModelSource, model_source
from src.models.timm_models import TimmSource
from src.optim.resolve import resolve
from src.optim.specs import parse_specs
from src.runner import Runner
from tests.conftest import ROOT, compose_config
from tests.generated_data import write_image_folder
from tests.model_families import built_on_meta, on_meta, roles_of

TOY = f"{__name__}.ToySource"


class ToyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, depth: int):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(depth))
        self.pos = nn.Parameter(torch.zeros(1, 4, 1, 1))
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        x = self.stem(x) + self.pos
        for block in self.blocks:
            x = torch.relu(block(x))
        return self.head(x.mean((2, 3)))


class ToySource(ModelSource):
    """A throwaway library: its own metadata, roles and export files."""

    library = "toy"
    transform_prefix = "toy:"  # dataset.transform_from=toy:<size>

    def __init__(self, depth: int = 3, image_size: int | None = None):
        self.depth = depth

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        return ToyNet(in_channels, num_classes, self.depth)

    def preprocess(self) -> Preprocess:
        return Preprocess(16, 20, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3, "bicubic")

    @classmethod
    def preprocess_named(cls, name: str) -> Preprocess:
        return Preprocess(int(name), int(name), (0.5,) * 3, (0.5,) * 3, 3)

    def roles(self, model: nn.Module):
        return roles_from_patterns(
            model,
            "toy",
            head=r"head\.",
            embeddings=r"(?:stem\.|pos$)",
            blocks=r"blocks\.(\d+)\.",
            no_weight_decay=r"pos$",
        )

    def architecture(self, in_channels: int, num_classes: int) -> dict:
        return {"source": "toy", "name": "ToyNet", "num_classes": num_classes, "depth": self.depth}

    def export_files(self, model: nn.Module) -> dict[str, str]:
        return {"toy.json": json.dumps({"depth": len(model.blocks)})}


def toy_cfg(tmp_path, *overrides):
    photos = write_image_folder(tmp_path / "photos", per_class=4, size=(24, 20))
    return compose_config(
        f"model._target_={TOY}",
        "+model.depth=3",
        "pretrained=none",
        "dataset=image_folder",
        f"dataset.root={photos}",
        "dataset.batch_size=4",
        "trainer.max_epochs=1",
        *overrides,
    )


@pytest.mark.e2e  # a whole (one-epoch) run
def test_a_source_defined_in_a_test_file_is_asked_by_transforms_presets_and_export(tmp_path):
    cfg = toy_cfg(tmp_path, "param_groups=vit_layer_decay", "optimizer=adamw")
    runner = Runner(cfg, tmp_path / "run")
    runner.run()
    # transforms: the dataset prepares images as the source says (16 px, its mean and filter)
    assert runner.data.input["size"] == 16 and runner.data.input["resize"] == 20
    assert (
        runner.data.input["mean"] == [0.5] * 3 and runner.data.input["interpolation"] == "bicubic"
    )
    # presets: the embeddings one step below block 0 of 3, the blocks by the source's numbers
    info = json.loads((tmp_path / "run" / "param_groups.json").read_text())
    mults = {g["name"]: g["lr_mult"] for g in info["groups"]}
    assert mults == pytest.approx(
        {"default": 1, "embeddings": 0.75**4, "blocks.0": 0.75**3, "blocks.1": 0.75**2, "blocks.2": 0.75}
    )  # fmt: skip
    groups = {g["name"]: g for g in info["groups"]}
    assert groups["embeddings"]["params"] == ["pos", "stem.weight", "stem.bias"]
    assert groups["embeddings"]["no_decay_tensors"] == 2  # the bias, and `pos` as the source says
    exempt = [g for g in runner.optimizer.param_groups if g["name"] == "embeddings"][1]
    assert exempt["param_names"] == ["pos", "stem.bias"] and exempt["weight_decay"] == 0
    # export: the source's architecture and its own file
    described = json.loads((tmp_path / "run" / "export" / "model.json").read_text())
    assert described["architecture"] == {
        "source": "toy", "name": "ToyNet", "num_classes": 3, "depth": 3
    }  # fmt: skip
    assert json.loads((tmp_path / "run" / "export" / "toy.json").read_text()) == {"depth": 3}


def test_a_sources_transform_prefix_names_its_metadata_and_head_boost_finds_its_head(tmp_path):
    cfg = toy_cfg(tmp_path, "dataset.transform_from=toy:24", "param_groups=head_boost")
    runner = Runner(cfg, tmp_path / "run")
    runner.setup()
    assert runner.data.input["size"] == 24
    assert preprocess_for("toy:12", None, native=None).size == 12
    boosted = [g for g in runner.optimizer.param_groups if g["name"] == "head"]
    assert [n for g in boosted for n in g["param_names"]] == ["head.weight", "head.bias"]


def test_a_users_own_module_builds_and_says_in_one_line_what_it_cannot_name(tmp_path):
    source = model_source({"_target_": f"{__name__}.ToyNet", "depth": 2})
    model = source.build(in_channels=3, num_classes=5)
    assert isinstance(model, ToyNet) and model.head.out_features == 5
    specs = parse_specs(
        OmegaConf.to_container(OmegaConf.load(ROOT / "conf/param_groups/head_boost.yaml"))
    )
    with pytest.raises(GroupwiseError, match=r"param_groups.head: role=head: the model source "):
        resolve(model, specs, source.roles(model))
    described = source.architecture(3, 5)
    assert described["source"] == f"{__name__}.ToyNet" and described["kwargs"] == {"depth": 2}


def test_a_model_key_its_source_does_not_take_is_one_line_before_any_build():
    with pytest.raises(
        GroupwiseError, match=r"model.detph: ToySource takes no such key; did you mean model.depth"
    ):
        model_source({"_target_": TOY, "detph": 2})


def vit_decay(model, roles) -> dict[str, float]:
    config = OmegaConf.load(ROOT / "conf" / "param_groups" / "vit_layer_decay.yaml")
    groups = resolve(model, parse_specs(OmegaConf.to_container(config)), roles).groups
    return {g.name: g.lr_mult for g in groups}


@pytest.mark.parametrize("depth", [12, 24])
def test_vit_layer_decay_gives_the_embeddings_decay_to_the_depth_plus_one(depth):
    source = TimmSource("vit_tiny_patch16_224", depth=depth)
    model = built_on_meta(source, num_classes=10)
    mults = vit_decay(model, source.roles(model))
    assert mults["embeddings"] == pytest.approx(0.75 ** (depth + 1))
    assert mults["blocks.0"] == pytest.approx(0.75**depth)
    assert mults[f"blocks.{depth - 1}"] == pytest.approx(0.75)


def test_vit_layer_decay_on_a_4_layer_dinov2_gives_the_embeddings_0_75_to_the_5():
    from transformers import AutoModelForImageClassification, Dinov2Config

    config = Dinov2Config(
        hidden_size=16, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=32,
        patch_size=8, num_labels=3,
    )  # fmt: skip
    with torch.device("meta"):
        model = AutoModelForImageClassification.from_config(config)
    mults = vit_decay(model, roles_of("hf_dinov2", model))
    assert mults["embeddings"] == pytest.approx(0.75**5)  # 0.237, not 0.75^13 = 0.0238
    assert [mults[f"blocks.{i}"] for i in range(4)] == pytest.approx(
        [0.75**4, 0.75**3, 0.75**2, 0.75]
    )


def test_torchvision_vit_layer_decay_counts_its_own_blocks():
    model = on_meta("vit_b_16")
    mults = vit_decay(model, roles_of("vit_b_16", model))
    assert mults["embeddings"] == pytest.approx(0.75**13)


def broken_scheduler(optimizer, steps_per_epoch: int, max_epochs: int, factor: float):
    """A builder with a bug of its own: a TypeError raised inside the call."""
    return len(factor)


def test_a_typo_under_a_section_is_one_line_and_a_bug_inside_a_builder_keeps_its_traceback():
    from src.config.arguments import build

    section = OmegaConf.create({"_target_": f"{__name__}.broken_scheduler", "factr": 0.5})
    with pytest.raises(
        GroupwiseError,
        match=r"scheduler.factr: broken_scheduler takes no such key; did you mean scheduler.factor",
    ):
        build(section, "scheduler", optimizer=None, steps_per_epoch=1, max_epochs=1)
    section = OmegaConf.create({"_target_": f"{__name__}.broken_scheduler", "factor": 0.5})
    with pytest.raises(TypeError, match="has no len"):  # ours to fix: not the user's line
        build(section, "scheduler", optimizer=None, steps_per_epoch=1, max_epochs=1)
