"""model.drop_path_rate: stochastic depth asked of every model source, under each library's own
name for it; a model without it is one line."""

import pytest
import torch
from timm.layers import DropPath
from torchvision.ops import StochasticDepth

from src.checks import check_run
from src.errors import GroupwiseError
from src.models.source import model_source
from tests.model_families import built_on_meta, hf_config_dir


def rates(model: torch.nn.Module, kind: type, attribute: str) -> list[float]:
    return [getattr(m, attribute) for m in model.modules() if isinstance(m, kind)]


def test_timm_models_take_it_as_drop_path_rate():
    source = model_source(
        {
            "_target_": "src.models.timm_models.TimmSource",
            "name": "vit_tiny_patch16_224",
            "drop_path_rate": 0.2,
        }
    )
    model = built_on_meta(source)
    drop = rates(model, DropPath, "drop_prob")
    assert drop and max(drop) == pytest.approx(0.2)  # the deepest block's; timm spreads it linearly


@pytest.mark.parametrize("name", ["convnext_tiny", "efficientnet_b0"])
def test_torchvision_models_take_it_as_stochastic_depth_prob(name):
    source = model_source(
        {
            "_target_": "src.models.torchvision_models.TorchvisionSource",
            "name": name,
            "drop_path_rate": 0.3,
        }
    )
    model = built_on_meta(source)
    assert max(rates(model, StochasticDepth, "p")) == pytest.approx(0.3, abs=0.02)
    assert source.builder_arguments()["stochastic_depth_prob"] == 0.3  # the export rebuilds it


def test_hugging_face_configs_take_it_as_drop_path_rate(tmp_path):
    folder = hf_config_dir(tmp_path / "dinov2", "hf_dinov2")
    source = model_source(
        {"_target_": "src.models.hf_models.HFSource", "name": str(folder), "drop_path_rate": 0.1}
    )
    model = built_on_meta(source)
    assert model.config.drop_path_rate == 0.1
    assert any(
        type(m).__name__.endswith("DropPath") and m.drop_prob == 0.1 for m in model.modules()
    )


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"_target_": "src.models.torchvision_models.TorchvisionSource", "name": "resnet18"},
            "torchvision's resnet18",
        ),
        (
            {"_target_": "src.models.torchvision_models.TorchvisionSource", "name": "swin_t"},
            "torchvision's swin_t",
        ),
        (
            {
                "_target_": "src.models.torchvision_models.TorchvisionSource",
                "name": "mobilenet_v3_small",
            },
            "torchvision's mobilenet_v3_small",
        ),
        ({"_target_": "src.models.lenet.LeNetSource"}, "lenet's LeNet"),
    ],
)
def test_a_model_without_stochastic_depth_is_one_line(config, says):
    with pytest.raises(GroupwiseError) as err:
        model_source({**config, "drop_path_rate": 0.1})
    (problem,) = err.value.problems
    assert (
        problem
        == f"model.drop_path_rate=0.1: {says} has no stochastic depth; remove model.drop_path_rate"
    )


def test_hugging_face_vit_has_none_and_a_rate_out_of_range_is_refused(tmp_path, make_cfg):
    folder = hf_config_dir(tmp_path / "vit", "hf_vit")
    with pytest.raises(
        GroupwiseError, match=r"=0.1: ViTConfig has no drop_path_rate \(no stochastic depth\)"
    ):
        model_source(
            {
                "_target_": "src.models.hf_models.HFSource",
                "name": str(folder),
                "drop_path_rate": 0.1,
            }
        )
    with pytest.raises(GroupwiseError) as err:
        check_run(make_cfg("model=resnet18", "pretrained=none", "+model.drop_path_rate=1.5"))
    assert err.value.problems == [
        "model.drop_path_rate=1.5: must be a number >= 0 and < 1 (the deepest block's chance of "
        "being skipped; 0.1 in BEiT and MAE fine-tunes), or null"
    ]
