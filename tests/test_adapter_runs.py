"""Adapters through the CLI (issue 28): a timm ViT trained with LoRA+ and a weight EMA, killed
and resumed bit-identical, exported merged (what src.predict uses, and anyone loads without
peft) and as a peft adapter that peft itself loads; the refusals, one line each."""

import csv
import json

import pytest
import timm
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file

from src.training.checkpoints import PROGRESS, load_checkpoint
from tests.conftest import assert_one_clear_line, read_scalars, run_cli, run_python
from tests.runs import TINY, assert_same_state

pytestmark = pytest.mark.e2e  # whole runs through the CLI

VIT = ["model=timm", "model.name=vit_tiny_patch16_224", "dataset.image_size=32"]
LORA_PLUS = ["adapter=lora", "param_groups=lora_plus"]


def base_vit() -> torch.nn.Module:
    """The 'pretrained' ViT the runs start from: timm's, for digits' one channel."""
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, in_chans=1, num_classes=5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("vit") / "vit.safetensors"
    save_file(base_vit().state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory, weights):
    """A finished LoRA+ run of the ViT, with a weight EMA that its best.pt and export follow."""
    run_dir = tmp_path_factory.mktemp("vit_run")
    run_cli(
        *VIT, *LORA_PLUS, *TINY, f"pretrained.path={weights}", "pretrained.exclude=[head]",
        "trainer.ema_decay=0.5", "trainer.monitor=val_ema/acc", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    return run_dir


def test_the_run_reports_its_adapter_groups_and_footprint(vit_run):
    info = json.loads((vit_run / "param_groups.json").read_text())
    assert [g["name"] for g in info["groups"]] == ["default", "lora_B"]
    assert info["adapter"]["trainable_params"] < info["adapter"]["full_params"] / 10
    assert all(".lora_B." in n or n.endswith(".bias") for n in info["groups"][1]["params"])
    scalars = read_scalars(vit_run)
    b, a = scalars["lr/lora_B"], scalars["lr/default"]
    assert [s for s, _ in b] == [s for s, _ in a]
    assert all(lb == pytest.approx(16 * la) for (_, lb), (_, la) in zip(b, a, strict=True))


def test_the_export_is_a_plain_model_equal_to_the_wrapped_one_and_src_predict_uses_it(
    vit_run, tmp_path
):
    plain = base_vit()
    plain.load_state_dict(
        load_file(str(vit_run / "export/model.safetensors"))
    )  # strict: no peft key
    description = json.loads((vit_run / "export/model.json").read_text())
    assert (
        description["weights"]["weights"] == "ema"
        and description["architecture"]["source"] == "timm"
    )
    images = tmp_path / "images"
    images.mkdir()
    torch.manual_seed(1)
    pixels = torch.rand(3, 1, 32, 32)
    from torchvision.utils import save_image

    for i, image in enumerate(pixels):
        save_image(image, images / f"{i}.png")
    result = run_python("-m", "src.predict", f"run_dir={vit_run}", f"inputs={images}")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((vit_run / "predictions.csv").open()))
    assert len(rows) == 3
    # The merged model and the wrapped one (the checkpoint's EMA weights, adapters unmerged)
    # answer alike, on the same inputs.
    from src.trained_run import open_run

    run = open_run(str(vit_run), "best")
    merged = run.model(1, 5, torch.device("cpu"))
    assert all(not type(m).__module__.startswith("peft") for m in merged.modules())
    with torch.no_grad():
        torch.testing.assert_close(merged(pixels), plain.eval()(pixels), rtol=0, atol=0)


def test_peft_loads_the_exported_adapter_onto_the_base_model(vit_run):
    adapter = vit_run / "export/adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["modules_to_save"] == ["head"]
    base = base_vit()
    peft_model = PeftModel.from_pretrained(base, str(adapter)).eval()
    plain = base_vit()
    plain.load_state_dict(load_file(str(vit_run / "export/model.safetensors")))
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(peft_model(x), plain.eval()(x), rtol=1e-4, atol=1e-5)


def test_an_exported_adapter_continues_a_run_and_one_of_another_rank_is_refused(
    vit_run, weights, tmp_path
):
    adapter = vit_run / "export/adapter"
    run_dir = tmp_path / "continued"
    run_cli(
        *VIT, *LORA_PLUS, "dataset.shots_per_class=8", "trainer.max_epochs=1",
        f"pretrained.path={weights}", "pretrained.exclude=[head]", f"adapter.path={adapter}",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    first = json.loads((run_dir / "metrics.json").read_text())
    assert first["val/acc"] >= 0
    result = run_cli(
        *VIT, *LORA_PLUS, f"pretrained.path={weights}", f"adapter.path={adapter}",
        "adapter.r=4", "dry_run=true", f"hydra.run.dir={tmp_path / 'other'}", check=False,
    )  # fmt: skip
    assert_one_clear_line(result, "r: 8 there, 4 in this run")


def test_a_lora_plus_vit_run_killed_and_resumed_ends_bit_identical(weights, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = [*VIT, *LORA_PLUS, *TINY, f"pretrained.path={weights}", "pretrained.exclude=[head]"]
    run_cli(*common, f"hydra.run.dir={whole}")
    killed = run_python("-m", "tests.crashing_run", "step", "8", *common, f"hydra.run.dir={split}")
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(split / "checkpoints/last.pt")[PROGRESS]["global_step"] == 6
    changed = run_cli(*common, "resume=true", "adapter.r=4", f"hydra.run.dir={split}", check=False)
    assert_one_clear_line(changed, "adapter.r: 8 -> 4")
    run_cli(*common, "resume=true", f"hydra.run.dir={split}")
    assert_same_state(
        load_checkpoint(whole / "checkpoints/last.pt"),
        load_checkpoint(split / "checkpoints/last.pt"),
    )
    assert read_scalars(split)["train/loss"] == read_scalars(whole)["train/loss"]


@pytest.mark.parametrize("adapter", ["none", "lora"])
def test_a_lora_run_s_checkpoint_loads_whole_into_a_plain_or_a_wrapped_run(
    vit_run, adapter, tmp_path
):
    run_cli(
        *VIT, f"adapter={adapter}", f"pretrained.path={vit_run}/checkpoints/last.pt",
        "pretrained.strict=true", "dry_run=true", f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    report = json.loads((tmp_path / "pretrained_report.json").read_text())
    assert not report["missing"] and not report["unexpected"] and not report["skipped_shape"]
    assert "merged" in report["source"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["adapter.targets=[fc9]"], "adapter.targets='fc9' matches no module with weights"),
        (["adapter.r=0"], "adapter.r=0: must be >= 1"),
        (["adapter.r=-2"], "adapter.r=-2: must be >= 1"),
        (["adapter.targets=[conv1]", "+param_groups.b={pattern: 'fc1.lora_B'}"],
         "only the modules adapter.targets selects have adapter tensors"),
        (["model._target_=torch.nn.Identity", "pretrained=none", "adapter.train_fully=[]"],
         "the model has no module peft can wrap"),
        (["adapter.path=/nonexistent"], "adapter.path=/nonexistent: no adapter_config.json"),
    ],
)  # fmt: skip
def test_bad_adapter_inputs_are_one_line_each(overrides, expected, tmp_path):
    result = run_cli(
        "adapter=lora", *overrides, "dry_run=true", f"hydra.run.dir={tmp_path}", check=False
    )
    assert_one_clear_line(result, expected)
    assert not any(tmp_path.iterdir())  # nothing written
