"""Pretrained loading asks the model source's roles, not the names: a source defined here, with
no edit to src/pretrained/, gets its stem adapted, its position embeddings resampled and its
head excluded under names no library uses; `pretrained.exclude` names roles of the built-in
sources too (a role takes its modules' buffers); a role a source cannot name is one line."""

import pytest
import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from src.models.contract import generic_roles, roles_from_patterns
from src.models.lenet import LeNet, LeNetSource
from src.models.source import ModelSource, model_source
from src.models.timm_models import TimmSource
from src.models.torchvision_models import TorchvisionSource
from src.pretrained.exclusion import role_problems
from src.pretrained.keys import check_rules
from src.pretrained.load import format_report, load_pretrained
from src.runner import Runner
from tests.conftest import assert_one_clear_line, compose_config, run_cli_here

PATCHNET = f"{__name__}.PatchNetSource"


class PatchNet(nn.Module):
    """A ViT in miniature under names of its own: a 1-D convolution mixes the tokens (defined
    first, so the first convolution is not the stem), `pixels_to_patches` is the stem,
    `where_tokens_sit` the position embeddings (with a summary token's), `decide` the head."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, patch: int = 4):
        super().__init__()
        width = 8
        self.token_mixer = nn.Conv1d(width, width, 1)
        self.pixels_to_patches = nn.Conv2d(in_channels, width, patch, patch)
        self.summary_token = nn.Parameter(torch.zeros(1, 1, width))
        self.where_tokens_sit = nn.Parameter(torch.randn(1, 1 + (image_size // patch) ** 2, width))
        self.decide = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.pixels_to_patches(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.summary_token.expand(len(x), -1, -1), x], 1) + self.where_tokens_sit
        return self.decide(self.token_mixer(x.transpose(1, 2))[:, :, 0])


class PatchNetSource(ModelSource):
    """A library of one model, which knows its parameters' roles."""

    library = "patchnet"
    name = "PatchNet"

    def __init__(self, image_size: int | None = None):
        self.image_size = image_size or 32

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        return PatchNet(in_channels, num_classes, self.image_size)

    def roles(self, model: nn.Module):
        return roles_from_patterns(
            model,
            "patchnet",
            head=r"decide\.",
            embeddings=r"(?:pixels_to_patches\.|summary_token$|where_tokens_sit$)",
            stem=r"pixels_to_patches\.",
            position_embeddings=r"where_tokens_sit$",
        )


def test_a_new_sources_stem_position_embeddings_and_head_are_found_by_its_roles(tmp_path):
    torch.manual_seed(0)
    trained = PatchNet(3, 5, image_size=64)  # RGB, a 16 x 16 grid of patches
    torch.save(trained.state_dict(), tmp_path / "patchnet.pt")
    # The names alone would find none of them: the first convolution is the token mixer.
    guessed = generic_roles(trained, "no source")
    assert guessed.stem == {"token_mixer.weight", "token_mixer.bias"}
    assert not guessed.position_embeddings

    cfg = compose_config(  # the digits: grey, 32 pixels, 5 classes; an 8 x 8 grid
        f"model._target_={PATCHNET}",
        f"pretrained.path={tmp_path / 'patchnet.pt'}",
        "pretrained.exclude=[head]",
        "pretrained.adapt_input_channels=true",
        "dry_run=true",
    )
    runner = Runner(cfg, tmp_path / "run")
    runner.setup()
    model, report = runner.model, runner.load_report
    checkpoint = trained.state_dict()

    assert report.resampled == {
        "where_tokens_sit": {"checkpoint": [1, 257, 8], "model": [1, 65, 8]}
    }
    expected = resample_abs_pos_embed(checkpoint["where_tokens_sit"], [8, 8], num_prefix_tokens=1)
    assert torch.equal(model.where_tokens_sit, expected)
    assert report.adapted == {
        "pixels_to_patches.weight": {"checkpoint": [8, 3, 4, 4], "model": [8, 1, 4, 4]}
    }
    torch.testing.assert_close(
        model.pixels_to_patches.weight, checkpoint["pixels_to_patches.weight"].sum(1, keepdim=True)
    )
    assert report.excluded == ["decide.weight", "decide.bias"]
    assert report.excluded_by_role == {"head": ["decide.weight", "decide.bias"]}
    assert not torch.equal(model.decide.weight, checkpoint["decide.weight"])  # same shape, kept out
    assert torch.equal(model.token_mixer.weight, checkpoint["token_mixer.weight"])
    assert not report.skipped_shape
    assert "excluded       2 by role head: decide.weight, decide.bias" in format_report(report)


def test_exclude_by_role_takes_lenets_head(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(LeNet(1, 5).state_dict(), path)
    report = load_pretrained(LeNet(1, 5), path, LeNetSource().roles, exclude=["head"])
    assert report.excluded == ["fc3.weight", "fc3.bias"]
    assert report.exclude == ["head"] and report.to_json()["counts"]["excluded"] == 2


def test_a_role_takes_the_buffers_of_its_modules_as_well(tmp_path):
    """A ResNet's embeddings are conv1 and bn1: bn1's running statistics go with them."""
    resnet = TorchvisionSource("resnet18")
    path = tmp_path / "w.pt"
    torch.save(resnet.build(3, 5).state_dict(), path)
    report = load_pretrained(resnet.build(3, 5), path, resnet.roles, exclude=["embeddings"])
    assert sorted(report.excluded_by_role["embeddings"]) == [
        "bn1.bias", "bn1.num_batches_tracked", "bn1.running_mean", "bn1.running_var",
        "bn1.weight", "conv1.weight",
    ]  # fmt: skip
    assert "layer1.0.bn1.running_mean" in report.loaded


def test_roles_and_patterns_mix_and_each_excluded_key_says_what_kept_it_out(tmp_path):
    vit = TimmSource("test_vit")
    path = tmp_path / "vit.pth"
    torch.save(vit.build(3, 10).state_dict(), path)
    report = load_pretrained(
        vit.build(3, 10), path, vit.roles, exclude=["position_embeddings", "head", r"^cls_token$"]
    )
    assert report.excluded_by_role == {
        "position_embeddings": ["pos_embed"],
        "head": ["head.weight", "head.bias"],
    }
    assert sorted(report.excluded) == ["cls_token", "head.bias", "head.weight", "pos_embed"]
    text = format_report(report)
    assert "by role position_embeddings: pos_embed; by role head: head.weight, head.bias" in text
    assert "by '^cls_token$': cls_token" in text


def test_the_word_head_as_a_regex_is_written_as_one(tmp_path):
    """`head` is the role; `head\\.` the pattern (torchvision's ViT: `heads.head.weight`)."""
    rules = check_rules([], ["head", r"head\."], None)
    assert rules.exclude_roles == ("head",) and rules.exclude_items == ["head", r"head\."]


def test_a_role_the_source_cannot_name_is_one_line_before_anything_is_built():
    custom = model_source({"_target_": f"{__name__}.PatchNet", "image_size": 32})
    roles = custom.roles(custom.build(1, 5))
    rules = check_rules([], ["head", "stem", r"^decide\."], None)
    problems = role_problems(rules, roles)
    assert problems == [
        f"pretrained.exclude=[head]: the model source {__name__}.PatchNet cannot name its head "
        "(a custom model's roles are unknown); exclude its keys by a regex instead, e.g. "
        r"pretrained.exclude=['^fc\.'] (the keys that start with 'fc.')"
    ]  # the stem, the generic answer's first convolution, is named
    assert role_problems(rules, PatchNetSource().roles(PatchNet(1, 5, 32))) == []


@pytest.mark.e2e  # the command, in this process
def test_excluding_a_custom_models_head_by_role_is_refused_in_one_line(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(PatchNet(1, 5, 32).state_dict(), path)
    result = run_cli_here(
        f"model._target_={__name__}.PatchNet",
        "+model.image_size=32",
        f"pretrained.path={path}",
        "pretrained.exclude=[head]",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert_one_clear_line(
        result, f"pretrained.exclude=[head]: the model source {__name__}.PatchNet cannot name"
    )
    assert not (tmp_path / "run").exists()  # refused before anything was written
