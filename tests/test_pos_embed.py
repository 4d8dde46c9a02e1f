"""Position embeddings resampled on load: equal to timm's own resampling, for timm's,
torchvision's and transformers' ViTs, found by their model source's roles (not by name);
pretrained.resample_pos_embed=false keeps the skip."""

from dataclasses import replace

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed
from torchvision.models import VisionTransformer
from transformers import AutoModelForImageClassification, ViTConfig

from src.models.hf_models import transformers_roles
from src.models.timm_models import TimmSource
from src.models.torchvision_models import TorchvisionSource
from src.pretrained import pos_embed
from src.pretrained.load import build_with_pretrained, format_report, load_pretrained


@pytest.mark.parametrize(("prefix", "old", "new"), [(1, 14, 2), (0, 7, 10), (2, 4, 6), (1, 3, 3)])
def test_resampling_equals_timms_on_the_same_tensor(prefix, old, new):
    embedding = torch.randn(1, prefix + old * old, 24)
    ours = pos_embed.resample(embedding, prefix + new * new, prefix)
    expected = resample_abs_pos_embed(embedding, [new, new], num_prefix_tokens=prefix)
    assert torch.equal(ours, expected)
    assert torch.equal(ours[:, :prefix], embedding[:, :prefix])  # the prefix tokens kept


def test_only_position_embeddings_with_square_grids_are_resampled():
    a, b = torch.zeros(1, 197, 8), torch.zeros(1, 5, 8)
    assert pos_embed.prefix_tokens(a, b) == 1
    assert pos_embed.prefix_tokens(torch.zeros(1, 196, 8), torch.zeros(1, 4, 8)) == 0
    assert pos_embed.prefix_tokens(a, torch.zeros(1, 5, 16)) is None  # another width
    assert pos_embed.prefix_tokens(torch.zeros(1, 100, 8), torch.zeros(1, 50, 8)) is None
    assert pos_embed.prefix_tokens(torch.zeros(197, 8), torch.zeros(5, 8)) is None  # not [1, n, w]


def test_a_timm_vit_saved_at_160_loads_at_32_as_timm_itself_loads_it(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit", num_classes=10).state_dict(), path)  # 10 x 10 grid
    expected = timm.create_model(
        "test_vit", pretrained=True, pretrained_cfg_overlay={"file": str(path)},
        num_classes=10, img_size=32,
    )  # fmt: skip
    model, report = build_with_pretrained(
        lambda: timm.create_model("test_vit", num_classes=10, img_size=32),
        path,
        TimmSource("test_vit").roles,
    )
    assert report.resampled == {"pos_embed": {"checkpoint": [1, 101, 64], "model": [1, 5, 64]}}
    assert not report.skipped_shape
    assert torch.equal(model.pos_embed, expected.pos_embed)
    assert "resampled      1: pos_embed [1, 101, 64] -> [1, 5, 64]" in format_report(report)
    assert report.to_json()["counts"]["resampled"] == 1


def test_resample_pos_embed_false_keeps_the_skip(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("vit_tiny_patch16_224").state_dict(), path)
    model = timm.create_model("vit_tiny_patch16_224", img_size=32)
    report = load_pretrained(
        model, path, TimmSource("vit_tiny_patch16_224").roles, resample_pos_embed=False
    )
    assert report.skipped_shape == {
        "pos_embed": {"checkpoint": [1, 197, 192], "model": [1, 5, 192]}
    }
    assert not report.resampled


def test_torchvision_and_transformers_vits_are_resampled_too(tmp_path):
    def torchvision_vit(size):  # vit_b_16's names, a few of its widths
        return VisionTransformer(size, 16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)

    path = tmp_path / "tv.pth"
    torch.save(torchvision_vit(224).state_dict(), path)
    small = torchvision_vit(32)
    report = load_pretrained(small, path, TorchvisionSource("vit_b_16").roles)
    assert list(report.resampled) == ["encoder.pos_embedding"]
    checkpoint = torch.load(path)["encoder.pos_embedding"]
    assert torch.equal(
        small.encoder.pos_embedding,
        resample_abs_pos_embed(checkpoint, [2, 2], num_prefix_tokens=1),
    )

    def vit(size):
        config = ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, image_size=size, patch_size=8)  # fmt: skip
        return AutoModelForImageClassification.from_config(config)

    vit(64).save_pretrained(tmp_path / "hf")
    report = load_pretrained(vit(32), tmp_path / "hf", transformers_roles)
    assert report.resampled == {
        "vit.embeddings.position_embeddings": {"checkpoint": [1, 65, 16], "model": [1, 17, 16]}
    }


def test_an_embedding_its_source_does_not_name_is_not_resampled_whatever_its_name(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit", num_classes=10).state_dict(), path)
    model = timm.create_model("test_vit", num_classes=10, img_size=32)

    def unnamed(m):  # a source that says the model has no position embeddings
        return replace(TimmSource("test_vit").roles(m), position_embeddings=frozenset())

    report = load_pretrained(model, path, unnamed)
    assert not report.resampled
    assert report.skipped_shape["pos_embed"] == {"checkpoint": [1, 101, 64], "model": [1, 5, 64]}
