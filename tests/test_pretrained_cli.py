"""Every pretrained source, rule and error through the real CLI (dry runs: nothing trains)."""

import json

import pytest
import torch
from safetensors.torch import save_file

from src.models.lenet import LeNet
from tests.conftest import CreatesFile, assert_one_clear_line, error_lines, read_texts, run_cli
from tests.pretrained_sources import lightning_checkpoint, torchvision_cache

pytestmark = pytest.mark.e2e  # every test runs the CLI

# The digits run's model: LeNet for 1 channel and the 5 classes of digits 5-9.
DIGITS_MODEL_KEYS = [f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")]  # fmt: skip


def report_of(run_dir):
    return json.loads((run_dir / "pretrained_report.json").read_text())


def test_every_file_format_loads(tmp_path):
    source = LeNet(1, 10).state_dict()  # a 10-digit model: its head does not fit digits 5-9
    paths = {}
    for suffix in (".pt", ".pth", ".pkl", ".bin"):
        paths[f"raw{suffix}"] = tmp_path / f"raw{suffix}"
        torch.save(source, paths[f"raw{suffix}"])
    for entry in ("state_dict", "model", "module"):
        paths[entry] = tmp_path / f"{entry}.pt"
        torch.save({entry: source, "epoch": 7, "optimizer": {"state": {}}}, paths[entry])
    paths["legacy"] = tmp_path / "legacy.pt"
    torch.save(source, paths["legacy"], _use_new_zipfile_serialization=False)
    paths["safetensors"] = tmp_path / "w.safetensors"
    save_file(source, paths["safetensors"])

    sweep = tmp_path / "sweep"
    run_cli(
        "-m",
        "dry_run=true",
        f"pretrained.path={','.join(str(p) for p in paths.values())}",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",
    )
    expected_sources = {
        "raw.pt": "torch zip checkpoint (memory-mapped)",
        "state_dict": "torch zip checkpoint (memory-mapped), weights under 'state_dict'",
        "model": "torch zip checkpoint (memory-mapped), weights under 'model'",
        "module": "torch zip checkpoint (memory-mapped), weights under 'module'",
        "legacy": "legacy torch checkpoint",
        "safetensors": "safetensors",
    }
    for job, (name, path) in enumerate(paths.items()):
        report = report_of(sweep / str(job))
        assert report["path"] == str(path)
        assert report["source"] == expected_sources.get(name, expected_sources["raw.pt"])
        # the shipped config excludes the head: everything else loads
        assert sorted(report["loaded"]) == sorted(DIGITS_MODEL_KEYS[:8]), name
        assert sorted(report["excluded"]) == ["fc3.bias", "fc3.weight"]
        assert report["exclude_origin"].startswith("set by the config files")


def test_a_lightning_checkpoint_with_its_prefix_and_ema_weights(tmp_path):
    lightning = tmp_path / "epoch=3-step=120.ckpt"
    torch.save(lightning_checkpoint(LeNet(1, 5)), lightning)
    # Quoted: Lightning's file names hold '=', which Hydra's override grammar would split on.
    run_cli("dry_run=true", "pretrained=none", f"pretrained.path='{lightning}'", "pretrained.prefix=model.",
            "pretrained.strict=true", f"hydra.run.dir={tmp_path / 'lightning'}")  # fmt: skip
    report = report_of(tmp_path / "lightning")
    assert report["source"] == "torch zip checkpoint (memory-mapped), weights under 'state_dict'"
    assert report["key_changes"] == ["prefix 'model.': took 10 of 10 tensors"]
    assert report["counts"]["loaded"] == 10 and report["loaded_share"] == 1.0

    live, ema = LeNet(1, 5), LeNet(1, 5)
    timm = tmp_path / "timm.pth.tar"
    torch.save({"state_dict": live.state_dict(), "state_dict_ema": ema.state_dict()}, timm)
    run_cli("dry_run=true", f"pretrained.path={timm}", "pretrained.use_ema=true",
            f"hydra.run.dir={tmp_path / 'ema'}")  # fmt: skip
    report = report_of(tmp_path / "ema")
    assert report["source"].endswith("weights under 'state_dict_ema'")


def test_resnet50_style_fine_tune_from_torchvision_weights_with_a_new_head(tmp_path, monkeypatch):
    # README's recipe with a small torchvision model; the weights come from torchvision's own
    # cache under $TORCH_HOME, where a locally saved state_dict stands in for the download.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    torchvision_cache(tmp_path / "torch", name)
    result = run_cli("dry_run=true", "model=resnet18", "model.name=mobilenet_v3_small",
                     "pretrained=none", f"pretrained.path={name}",
                     "pretrained.adapt_input_channels=true", r"pretrained.exclude=['^classifier\.3\.']",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    report = report_of(tmp_path / "run")
    assert report["source"] == "torchvision weights"
    assert report["adapted"] == {
        "features.0.0.weight": {"checkpoint": [16, 3, 3, 3], "model": [16, 1, 3, 3]}
    }
    assert report["excluded"] == ["classifier.3.weight", "classifier.3.bias"]
    assert report["exclude_origin"] == ""  # typed on the command line
    assert not report["skipped_shape"] and not report["missing"] and not report["unexpected"]
    assert "Downloading" not in result.stdout + result.stderr
    assert f"pretrained: {name} (torchvision weights)" in result.stdout


def test_rename_rules_from_the_command_line_and_the_report_in_tensorboard(tmp_path):
    checkpoint = tmp_path / "w.pt"
    state = LeNet(1, 5).state_dict()
    torch.save(
        {f"_orig_mod.net.{k.replace('fc', 'linear')}": v for k, v in state.items()}, checkpoint
    )
    result = run_cli("trainer.max_epochs=1", f"pretrained.path={checkpoint}",
                     r"pretrained.rename=[['^net\.', ''], ['^linear', 'fc']]",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    report = report_of(tmp_path / "run")
    assert report["key_changes"] == [
        "wrapper '_orig_mod.' removed from every key",
        r"rename ['^net\.', '']: 10 keys",
        "rename ['^linear', 'fc']: 6 keys",
    ]
    text = read_texts(tmp_path / "run")["pretrained"]
    assert r"keys           rename ['^net\.', '']: 10 keys" in text
    assert "loaded         8 tensors, 60,856 of 61,281 parameters (99.3%)" in text
    # The exclusion came from the default config, not the command line: the report says so.
    origin = "set by the config files (pretrained=digits_0to4), not the command line"
    assert report["exclude_origin"] == origin
    assert f"excluded       2 by role head, {origin}: fc3.weight, fc3.bias" in text
    assert report["exclude"] == ["head"]
    assert report["excluded_by_role"] == {"head": ["fc3.weight", "fc3.bias"]}
    assert "loaded         8 tensors" in result.stdout


def test_a_detector_backbone_by_prefix_and_strict(tmp_path):
    detector = {f"backbone.{k}": v for k, v in LeNet(1, 5).state_dict().items()}
    detector["roi_heads.box.weight"] = torch.zeros(4, 8)
    path = tmp_path / "detector.pt"
    torch.save({"model": detector}, path)
    run_cli("dry_run=true", f"pretrained.path={path}", "pretrained.prefix=backbone.",
            "pretrained.strict=true", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    report = report_of(tmp_path / "run")
    assert report["key_changes"] == ["prefix 'backbone.': took 10 of 11 tensors"]
    assert report["counts"] == {"loaded": 8, "adapted": 0, "resampled": 0, "skipped_shape": 0,
                                "excluded": 2, "unexpected": 0, "missing": 0}  # fmt: skip


def file_of(make):
    def overrides(tmp_path):
        path = tmp_path / "w.pt"
        make(path, tmp_path)
        return [f"pretrained.path={path}"]

    return overrides


def lenet(path, _):
    torch.save(LeNet(1, 5).state_dict(), path)


def truncated(path, _):
    lenet(path, _)
    path.write_bytes(path.read_bytes()[:-200])


def code_in_lightning(path, tmp_path):
    torch.save(
        lightning_checkpoint(LeNet(1, 5), callbacks={"x": CreatesFile(tmp_path / "pwned")}), path
    )


def prefixed(path, _):
    torch.save({f"model.{k}": v for k, v in LeNet(1, 5).state_dict().items()}, path)


def extra_key(path, _):
    torch.save({**LeNet(1, 5).state_dict(), "aux.weight": torch.zeros(1)}, path)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (file_of(lambda p, _: p.mkdir()), "w.pt: is a directory, not a checkpoint file"),
        (file_of(lambda p, _: p.write_bytes(b"")), "w.pt: the file is empty"),
        (file_of(truncated), "w.pt: not a readable PyTorch checkpoint"),
        (file_of(code_in_lightning), "refused: the checkpoint's pickle asks to build"),
        (file_of(prefixed), "shares no tensor (same key and shape) with the model; the keys most alike: 'model.fc1.weight' (checkpoint) ~ 'fc1.weight' (model)"),
        (lambda t: [*file_of(extra_key)(t), "pretrained.strict=true"], "pretrained.strict=true: "),
        (lambda t: [*file_of(lenet)(t), "pretrained.prefix=backbone."], "pretrained.prefix='backbone.': no key of"),
        (lambda t: [*file_of(lenet)(t), "pretrained.use_ema=true"], "pretrained.use_ema=true: "),
        (lambda t: [*file_of(lenet)(t), "pretrained.rename=[['^x', '']]"], "renames no key (a typo?)"),
        (["pretrained.path=ResNet51_Weights.IMAGENET1K_V1"], "not a torchvision weights name"),
    ],
    ids=["directory", "empty", "truncated", "code-carrying-lightning", "zero-loaded",
         "strict", "prefix-not-found", "no-ema", "rename-matches-nothing",
         "unknown-torchvision-name"],
)  # fmt: skip
def test_pretrained_errors_are_one_clear_line_without_traceback(tmp_path, overrides, expected):
    overrides = overrides(tmp_path) if callable(overrides) else overrides
    result = run_cli("dry_run=true", *overrides, f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert_one_clear_line(result, expected)
    assert not (tmp_path / "pwned").exists()


def test_every_mistake_in_the_pretrained_config_is_reported_at_once(tmp_path):
    overrides = ["pretrained.rename=[['^(', ''], [a, b, c]]", "pretrained.exclude=['[']"]
    result = run_cli("dry_run=true", *overrides, f"hydra.run.dir={tmp_path}", check=False)
    assert error_lines(result) == [
        "groupwise: error: pretrained.rename[0]=['^(', '']: invalid regex or replacement "
        "(missing ), unterminated subpattern at position 1); fix or escape it",
        "groupwise: error: pretrained.rename[1]=['a', 'b', 'c']: a rule is a [pattern, "
        "replacement] pair of strings, e.g. pretrained.rename=[['^backbone\\.', '']]",
        "groupwise: error: pretrained.exclude: '[' is not a valid regex (unterminated character "
        "set at position 0); fix or escape it",
    ]
    result = run_cli("dry_run=true", "+pretrained.strickt=true", "trainer.max_epochs=0",
                     f"hydra.run.dir={tmp_path}", check=False)  # fmt: skip
    assert error_lines(result) == [
        "groupwise: error: pretrained.strickt: no such key; did you mean pretrained.strict? "
        "pretrained has adapt_input_channels, exclude, path, prefix, rename, resample_pos_embed, "
        "strict, use_ema",
        "groupwise: error: trainer.max_epochs=0: must be >= 1; epochs to train in all (a resumed "
        "run counts those done)",
    ]
