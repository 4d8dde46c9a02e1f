"""timm and Hugging Face models as sources: built for the run's classes, channels and image
size, giving logits; their preprocessing from their own metadata; the libraries imported only
by runs that use them, and a clear line when one is not installed."""

import json

import pytest
import torch
from transformers import BitImageProcessor, ConvNextImageProcessor

from src.data.transforms import preprocess_for
from src.errors import GroupwiseError
from src.models.contract import Preprocess
from src.models.hf_models import HFSource
from src.models.source import model_source
from src.models.timm_models import TimmSource
from tests.conftest import assert_one_clear_line, run_python
from tests.model_families import hf_config_dir, hf_vit_dir


def test_a_timm_vit_is_built_for_the_runs_image_size_channels_and_classes():
    model = TimmSource("test_vit", image_size=32).build(in_channels=1, num_classes=4)
    assert model.pos_embed.shape[1] == 1 + (32 // 16) ** 2  # the class token and 2x2 patches
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    # a ResNet takes any size: it is not given one, which its constructor would refuse
    resnet = TimmSource("test_resnet", image_size=32).build(in_channels=3, num_classes=4)
    assert resnet(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_an_unknown_timm_name_is_a_clear_error():
    with pytest.raises(GroupwiseError, match=r"model.name=vit_tiny_patch16_2244: not a timm model"):
        TimmSource("vit_tiny_patch16_2244")


def test_torchvision_vit_takes_the_runs_image_size_from_the_config(make_cfg):
    cfg = make_cfg("model=vit_b_16", "pretrained=none")  # digits: 32 pixels
    with torch.device("meta"):  # ViT-B's 86M parameters, without allocating them
        model = model_source(cfg.model).build(in_channels=1, num_classes=5)
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 5)
    assert model.encoder.pos_embedding.shape[1] == 1 + (32 // 16) ** 2


def test_a_hugging_face_model_gives_logits_and_keeps_its_own_names(tmp_path):
    folder = hf_config_dir(tmp_path / "dinov2", "hf_dinov2")
    model = HFSource(str(folder)).build(in_channels=1, num_classes=5)
    logits = model(torch.zeros(2, 1, 32, 32))
    assert type(logits) is torch.Tensor and logits.shape == (2, 5)
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "dinov2.embeddings.cls_token" and names[-1] == "classifier.bias"
    assert "dinov2.encoder.layer.11.mlp.fc2.weight" in names


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d.mkdir(), "the directory has no config.json"),
        (lambda d: d, "neither a directory written by save_pretrained nor a model in the local"),
    ],
    ids=["no-config", "missing"],
)
def test_a_hugging_face_directory_without_a_config_is_a_clear_error(tmp_path, make, expected):
    make(tmp_path / "model")
    with pytest.raises(GroupwiseError, match=f"model.name={tmp_path / 'model'}: {expected}"):
        HFSource(str(tmp_path / "model"))


def test_the_dataset_takes_its_transforms_from_the_models_own_metadata(make_cfg, tmp_path):
    folder = hf_vit_dir(tmp_path / "vit")
    timm_tag = preprocess_for("timm:resnet50.a1_in1k", None, None)
    for overrides, expected in [
        (["model=timm", "model.name=resnet50.a1_in1k"], timm_tag),
        (["model=hf", f"model.name={folder}"], preprocess_for(f"hf:{folder}", None, None)),
        (["model=resnet18"], preprocess_for("resnet18", None, None)),
        ([], Preprocess(32, None, None, None, None)),  # LeNet: its size; the dataset's rest
    ]:
        cfg = make_cfg(*overrides, "dataset=image_folder", "dataset.root=/x")
        assert cfg.dataset.transform_from == "model"  # the model source's own
        assert model_source(cfg.model).preprocess() == expected
    assert timm_tag.interpolation == "bicubic" and timm_tag.size == 224  # the a1 tag's
    timm_pre = preprocess_for("timm:test_vit", None, None)  # timm: 160 px, crop_pct 0.95
    assert (timm_pre.size, timm_pre.resize, timm_pre.interpolation) == (160, 168, "bicubic")
    assert timm_pre.mean == (0.5, 0.5, 0.5)
    assert preprocess_for(f"hf:{folder}", None, None).size == 32
    assert preprocess_for(f"hf:{folder}", 64, None).size == 64  # dataset.image_size wins


@pytest.mark.parametrize(
    ("processor", "expected"),
    [
        (BitImageProcessor(), (224, 224, "bicubic")),  # DINOv2's: resize 224, crop 224
        (BitImageProcessor(size={"shortest_edge": 256}), (224, 256, "bicubic")),
        (ConvNextImageProcessor(size={"shortest_edge": 224}), (224, 256, "bicubic")),  # crop_pct
    ],
)
def test_hugging_face_processor_configs_give_size_resize_and_filter(tmp_path, processor, expected):
    processor.save_pretrained(tmp_path)
    pre = preprocess_for(f"hf:{tmp_path}", None, None)
    assert (pre.size, pre.resize, pre.interpolation) == expected
    assert pre.mean == tuple(processor.image_mean)


@pytest.mark.e2e
def test_a_plain_run_never_imports_timm_or_transformers_and_each_missing_one_is_a_clear_line(
    tmp_path,
):
    script = f"""
import json, sys
from tests.cli_in_process import run
dry = run(["dry_run=true", "hydra.run.dir={tmp_path / "default"}"])
imported = [m for m in ("timm", "transformers", "huggingface_hub") if m in sys.modules]
sys.modules["timm"] = sys.modules["transformers"] = None  # as if not installed
missing = [
    run([model, name, "pretrained=none", "dry_run=true", f"hydra.run.dir={tmp_path}/" + model[6:]])
    for model, name in (("model=timm", "model.name=test_vit"), ("model=hf", "model.name=x"))
]
missing.append(run(["model=timm", "dry_run=true", f"hydra.run.dir={tmp_path}/no_name"]))
print(json.dumps({{"dry": dry, "imported": imported, "missing": missing}}))
"""
    result = run_python("-c", script)
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["dry"]["code"] == 0 and out["imported"] == []
    timm_missing, hf_missing, no_name = (
        type(result)(["cli"], r["code"], r["stdout"], r["stderr"]) for r in out["missing"]
    )
    assert_one_clear_line(
        timm_missing,
        "model=timm needs timm, which is not installed; install the 'timm' extra: pip install -e '.[timm]'",
    )
    assert_one_clear_line(
        hf_missing, "model=hf needs transformers, which is not installed; install the 'hf' extra"
    )
    assert_one_clear_line(no_name, "model.name: required, and not set; set model.name=...")


def test_further_model_keys_set_the_hugging_face_config_and_a_typo_is_named(tmp_path):
    folder = hf_config_dir(tmp_path / "vit", "hf_vit")
    model = HFSource(str(folder), hidden_dropout_prob=0.25).build(3, 2)
    assert model.config.hidden_dropout_prob == 0.25
    with pytest.raises(GroupwiseError, match=r"model\.hiden_dropout_prob: ViTConfig has no such"):
        HFSource(str(folder), hiden_dropout_prob=0.25)
