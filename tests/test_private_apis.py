"""What groupwise takes from torch's, torchvision's, transformers' and optuna's private code
still holds.

Each test fails saying what changed, and where groupwise reads it, when a release moves or
changes it. (Hydra's: tests/test_hydra_internals.py.)
"""

import importlib.metadata
import inspect
import sys

import pytest
import torch
from torch import nn

from src.pretrained.transformers_names import to_model_names
from tests.conftest import run_python

TORCH_CHANGED = f"torch {torch.__version__} changed underneath "
# Before 5, checkpoints carry a transformers model's own names: nothing to rename.
renames = pytest.mark.skipif(
    int(importlib.metadata.version("transformers").split(".")[0]) < 5,
    reason="transformers < 5 does not rename checkpoint keys",
)
TRANSFORMERS_CHANGED = (
    "transformers changed underneath src/pretrained/transformers_names.py, which applies its "
    "renaming of checkpoint keys (as from_pretrained does): "
)


def test_foreach_norm_and_sub_still_compute_what_group_signals_reads():
    where = (
        TORCH_CHANGED + "src/tracking/group_signals.py, which takes per-tensor norms and "
        "differences of whole parameter lists in a few fused kernels; "
    )
    for name in ("_foreach_norm", "_foreach_sub_"):
        assert callable(getattr(torch, name, None)), (
            where + f"torch.{name} is gone (a public torch.foreach.{name[9:]} would replace it)"
        )
    tensors = [torch.randn(3, 4), torch.randn(5), torch.randn(())]
    norms = torch._foreach_norm(tensors)
    expected = [torch.linalg.vector_norm(t) for t in tensors]
    assert len(norms) == len(tensors) and all(
        torch.allclose(n, e) for n, e in zip(norms, expected, strict=True)
    ), where + f"torch._foreach_norm gave {norms}, not each tensor's L2 norm {expected}"
    copies, others = [t.clone() for t in tensors], [torch.randn_like(t) for t in tensors]
    torch._foreach_sub_(copies, others)
    assert all(torch.equal(c, t - o) for c, t, o in zip(copies, tensors, others, strict=True)), (
        where + "torch._foreach_sub_(a, b) no longer subtracts b from a in place"
    )


def test_building_an_optimizer_still_imports_the_compiler_stack_start_up_imports_early():
    # A fresh process: this one imported it long ago.
    result = run_python(
        "-c",
        "import sys, torch; torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]); "
        "print('torch._dynamo' in sys.modules)",
    )
    assert result.stdout.strip() == "True", (
        TORCH_CHANGED + "src/run.py's `_start_up_done`, which imports torch._dynamo while the "
        "collector is off because building an optimizer imports it: building one no longer "
        f"does ({result.stdout}{result.stderr}); import what it imports now, or nothing"
    )


def test_a_compiled_models_keys_still_carry_the_prefix_the_loader_removes():
    keys = list(torch.compile(nn.Linear(2, 2)).state_dict())
    assert keys == ["_orig_mod.weight", "_orig_mod.bias"], (
        TORCH_CHANGED + "src/pretrained/keys.py, whose WRAPPERS remove torch.compile's "
        f"`_orig_mod.` from a checkpoint's keys: a compiled model now saves {keys}; add the new "
        "prefix beside the old one (checkpoints written before keep theirs)"
    )


@pytest.fixture(scope="module")
def vit():
    """A tiny transformers ViT on the meta device: its parameter names, no memory."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
        image_size=16, patch_size=8,
    )  # fmt: skip
    with torch.device("meta"):
        return ViTForImageClassification(config)


def test_torchvisions_policies_still_draw_and_apply_where_the_device_stage_reads_them():
    """src/data/device_augmentation.py draws each image's operations from a v2 policy's
    augmentation space and applies them with its own kernel method."""
    import torchvision
    from torchvision.transforms import v2

    where = (
        f"torchvision {torchvision.__version__} changed underneath "
        "src/data/device_augmentation.py, which draws per image as the v2 policies draw: "
    )
    for policy in (v2.RandAugment(), v2.TrivialAugmentWide(), v2.AutoAugment()):
        for name in ("_AUGMENTATION_SPACE", "_apply_image_or_video_transform", "_fill"):
            assert hasattr(policy, name), where + f"{type(policy).__name__}.{name} is gone"
        magnitudes_fn, signed = policy._AUGMENTATION_SPACE["Rotate"]
        assert isinstance(signed, bool) and len(magnitudes_fn(10, 32, 32)) == 10, (
            where + "an augmentation space entry is no longer (magnitudes(bins, h, w), signed)"
        )
    assert hasattr(v2.AutoAugment(), "_policies") and hasattr(v2.RandAugment(), "_get_random_item")
    drawn = inspect.getsource(v2.RandAugment.forward)
    assert "torch.rand(()) <= 0.5" in drawn, where + "RandAugment draws its sign differently"


@renames
def test_transformers_renaming_rules_are_where_groupwise_reads_them(vit):
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import (
            WeightConverter,
            WeightRenaming,
            rename_source_key,
        )
    except ImportError as err:
        pytest.fail(TRANSFORMERS_CHANGED + f"{err}")
    mapping = list(inspect.signature(get_model_conversion_mapping).parameters)
    assert mapping[:1] == ["model"], (
        TRANSFORMERS_CHANGED + f"get_model_conversion_mapping{mapping} no longer takes the model"
    )
    rename = list(inspect.signature(rename_source_key).parameters)
    assert rename[:3] == ["source_key", "weight_renamings", "weight_converters"], (
        TRANSFORMERS_CHANGED + f"rename_source_key{rename} no longer takes (key, renamings, "
        "converters)"
    )
    assert all(isinstance(cls, type) for cls in (WeightConverter, WeightRenaming))
    # As save_pretrained writes a ViT (and the hub holds it); transformers 5 renames it.
    on_disk = "vit.encoder.layer.0.attention.attention.query.weight"
    renamed, _ = to_model_names(vit, {on_disk: torch.zeros(1)})
    assert set(renamed) <= set(vit.state_dict()), (
        TRANSFORMERS_CHANGED + f"{on_disk} became {list(renamed)}, a name the ViT does not have"
    )


@renames
def test_renaming_rules_that_cannot_be_imported_are_a_warning_not_silence(vit, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers.conversion_mapping", None)  # import fails
    tensors = {"vit.encoder.layer.0.attention.attention.query.weight": torch.zeros(1)}
    renamed, _ = to_model_names(vit, tensors)
    assert renamed == tensors
    warning = capsys.readouterr().err
    assert warning.startswith("groupwise: warning: transformers ")
    assert "renaming of checkpoint keys cannot be applied" in warning


def test_a_frozen_trials_storage_id_still_opens_it_as_a_trial():
    optuna = pytest.importorskip("optuna", minversion="4")
    study = optuna.create_study(direction="maximize")
    asked = study.ask()
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == asked.number)
    assert isinstance(getattr(frozen, "_trial_id", None), int), (
        f"optuna {optuna.__version__} changed underneath src/config/study.py, which opens a "
        "sweep job's trial from its number through FrozenTrial._trial_id"
    )
    optuna.trial.Trial(study, frozen._trial_id).report(0.5, 1)
    assert study.trials[asked.number].intermediate_values == {1: 0.5}
