"""Weights where timm and Hugging Face keep them: a model directory written by
`save_pretrained` (sharded too), timm's `save_for_hf` files, and the Hugging Face hub cache
(stood in for by a cache the test lays out): all read by groupwise's own loader."""

import huggingface_hub.constants
import pytest
import timm
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification, Dinov2Config, Dinov2Model

from src.data.transforms import preprocess_for
from src.errors import GroupwiseError
from src.models.hf_models import HFSource
from src.models.timm_models import TimmSource
from src.pretrained.load import build_with_pretrained
from src.pretrained.sources import read_source
from tests.model_families import hf_config_dir, hf_vit_dir
from tests.pretrained_sources import hub_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Hugging Face hub cache, where HF_HUB_CACHE would point."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_a_save_pretrained_directory_loads_under_the_models_names_with_a_new_head(tmp_path):
    folder = hf_vit_dir(tmp_path / "vit", num_labels=10)
    source = HFSource(str(folder))
    model, report = build_with_pretrained(lambda: source.build(3, 3), folder, source.roles)
    saved = load_file(folder / "model.safetensors")
    # transformers 5 names the query projection q_proj; save_pretrained writes its old name
    assert torch.equal(
        model.vit.layers[1].attention.q_proj.weight,
        saved["vit.encoder.layer.1.attention.attention.query.weight"],
    )
    assert report.source == "model directory, model.safetensors: safetensors"
    assert report.key_changes[0].startswith("transformers' names for ViTForImageClassification")
    assert set(report.skipped_shape) == {"classifier.weight", "classifier.bias"}
    assert len(report.loaded) == len(saved) - 2 and not report.unexpected
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)  # logits, not an output object


def test_a_sharded_directory_is_read_whole_from_its_index(tmp_path):
    folder = hf_vit_dir(tmp_path / "vit")
    model = AutoModelForImageClassification.from_pretrained(folder)  # transformers' own load
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    whole, sharded = read_source(folder), read_source(tmp_path / "sharded")
    assert sharded.description.startswith("model directory, ")
    assert "shards listed in model.safetensors.index.json" in sharded.description
    assert whole.tensors.keys() == sharded.tensors.keys()
    assert all(torch.equal(whole.tensors[k], sharded.tensors[k]) for k in whole.tensors)
    shard = next((tmp_path / "sharded").glob("model-00002-of-*.safetensors"))
    shard.unlink()
    with pytest.raises(GroupwiseError, match=f"lists shards that are not there: {shard.name}"):
        read_source(tmp_path / "sharded")


def test_a_backbone_checkpoint_gets_the_task_models_prefix(tmp_path):
    """DINOv2 on the hub is the bare Dinov2Model: its keys lack the classifier's `dinov2.`."""
    config = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2)
    source = Dinov2Model(config)
    source.save_pretrained(tmp_path / "dinov2")
    hf = HFSource(str(tmp_path / "dinov2"))
    model, report = build_with_pretrained(lambda: hf.build(3, 3), tmp_path / "dinov2", hf.roles)
    assert "base model prefix 'dinov2.' added to" in " ".join(report.key_changes)
    assert report.missing == ["classifier.weight", "classifier.bias"] and not report.unexpected
    assert torch.equal(model.dinov2.embeddings.cls_token, source.embeddings.cls_token)


@pytest.mark.parametrize("safe", [True, False], ids=["model.safetensors", "pytorch_model.bin"])
def test_timm_weights_in_the_hub_cache_load_by_repo_id_offline(cache, safe):
    torch.manual_seed(0)
    source = timm.create_model("test_vit", num_classes=10)
    snapshot = hub_cache(cache, "timm/test_vit.r160_in1k")
    timm.models.save_for_hf(source, str(snapshot), safe_serialization=safe)
    vit = TimmSource("test_vit")
    for path in ("hf-hub:timm/test_vit.r160_in1k", "timm/test_vit.r160_in1k"):
        model, report = build_with_pretrained(lambda: vit.build(3, 3), path, vit.roles)
        assert report.source.startswith("Hugging Face hub cache timm/test_vit.r160_in1k, ")
        assert set(report.skipped_shape) == {"head.weight", "head.bias"}
        assert torch.equal(model.blocks[5].mlp.fc2.weight, source.blocks[5].mlp.fc2.weight)


def test_a_model_missing_from_the_hub_cache_is_a_clear_error(cache):
    with pytest.raises(GroupwiseError) as err:
        read_source("hf-hub:timm/not_there")
    assert f"timm/not_there is not in the Hugging Face hub cache ({cache})" in str(err.value)
    assert "nothing is downloaded" in str(err.value)
    with pytest.raises(GroupwiseError, match="no such file"):  # a missing file stays one
        read_source("weights/not_there.pt")


def test_a_directory_without_weights_names_what_it_looked_for(tmp_path):
    folder = hf_config_dir(tmp_path / "config_only", "hf_vit")
    with pytest.raises(
        GroupwiseError, match=r"holds none of model.safetensors, .*\['config.json'\]"
    ):
        read_source(folder)


def test_a_hugging_face_model_in_the_hub_cache_builds_loads_and_preprocesses_by_its_id(cache):
    """model.name, pretrained.path and transform_from may all name a cached hub model."""
    hf_vit_dir(hub_cache(cache, "org/tiny-vit"), num_labels=10)
    source = HFSource("org/tiny-vit")
    model, report = build_with_pretrained(lambda: source.build(3, 3), "org/tiny-vit", source.roles)
    assert report.source.startswith("Hugging Face hub cache org/tiny-vit, model.safetensors")
    assert set(report.skipped_shape) == {"classifier.weight", "classifier.bias"}
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert preprocess_for("hf:org/tiny-vit", None, None).size == 32
