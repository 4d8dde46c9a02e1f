"""Reading every checkpoint format, the key rules, shapes and channels, the report, safety."""

import argparse
import io
import pathlib
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from src.errors import GroupwiseError
from src.models.lenet import LeNet
from src.pretrained.files import read_weights
from src.pretrained.load import build_with_pretrained, check_options, load_pretrained
from src.pretrained.report import fold_by_prefix, fold_shapes, format_report
from tests.conftest import CreatesFile
from tests.pretrained_sources import lightning_checkpoint, source_roles, torchvision_cache


class Small(nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, classes)


def save(obj, path, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def assert_same_weights(model: nn.Module, state: dict, keys):
    for key in keys:
        assert torch.equal(model.state_dict()[key], state[key]), key


def test_same_key_and_shape_loads_other_shape_is_skipped_with_both_shapes(tmp_path):
    source = Small(classes=5)
    source.body.weight.data.fill_(0.5)
    checkpoint = {**source.state_dict(), "extra.weight": torch.ones(2)}
    del checkpoint["norm.bias"]
    target = Small(classes=3)
    report = load_pretrained(target, save(checkpoint, tmp_path / "w.pt"), source_roles)

    assert torch.equal(target.body.weight, torch.full((8, 4), 0.5))
    assert "body.weight" in report.loaded and "norm.running_mean" in report.loaded
    assert report.skipped_shape == {
        "head.weight": {"checkpoint": [5, 8], "model": [3, 8]},
        "head.bias": {"checkpoint": [5], "model": [3]},
    }
    assert report.unexpected == ["extra.weight"]
    assert report.missing == ["norm.bias"]
    assert report.loaded_elements == 4 * 8 + 8 + 8  # body and norm.weight: parameters only
    assert report.to_json()["loaded_share"] == pytest.approx(48 / (32 + 8 + 16 + 24 + 3))
    assert report.to_json()["counts"] == {
        "loaded": 6, "adapted": 0, "resampled": 0, "skipped_shape": 2, "excluded": 0,
        "unexpected": 1, "missing": 1,
    }  # fmt: skip


def test_excluded_keys_are_never_loaded(tmp_path):
    source, target = LeNet(1, 5), LeNet(1, 5)
    before = target.fc3.weight.clone()
    report = load_pretrained(
        target, save(source.state_dict(), tmp_path / "w.pt"), source_roles, exclude=[r"^fc3\."]
    )
    assert report.excluded == ["fc3.weight", "fc3.bias"]
    assert torch.equal(target.fc3.weight, before)
    assert torch.equal(target.fc1.weight, source.fc1.weight)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl", ".bin"])
def test_a_raw_state_dict_loads_whatever_the_extension(tmp_path, suffix):
    state = LeNet(1, 5).state_dict()
    weights = read_weights(save(state, tmp_path / f"w{suffix}"))
    assert weights.description == "torch zip checkpoint (memory-mapped)"
    assert weights.tensors.keys() == state.keys()


def test_the_legacy_torch_format_loads(tmp_path):
    state = LeNet(1, 5).state_dict()
    path = save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    weights = read_weights(path)
    assert weights.description == "legacy torch checkpoint"
    assert torch.equal(weights.tensors["fc1.weight"], state["fc1.weight"])


@pytest.mark.parametrize("entry", ["state_dict", "model", "module"])
def test_weights_inside_a_training_checkpoint_are_found(tmp_path, entry):
    source = Small()
    checkpoint = {entry: source.state_dict(), "optimizer": {"state": {}}, "epoch": 3}
    weights = read_weights(save(checkpoint, tmp_path / "last.pt"))
    assert weights.tensors.keys() == source.state_dict().keys()
    assert weights.description.endswith(f"weights under '{entry}'")


@pytest.mark.parametrize("entry", ["state_dict_ema", "model_ema"])
def test_use_ema_takes_the_moving_average_instead(tmp_path, entry):
    live, ema = Small(), Small()
    path = save({"state_dict": live.state_dict(), entry: ema.state_dict()}, tmp_path / "w.pt")
    target = Small()
    load_pretrained(target, path, source_roles, use_ema=True)
    assert_same_weights(target, ema.state_dict(), ["body.weight", "head.bias"])
    load_pretrained(target, path, source_roles)
    assert_same_weights(target, live.state_dict(), ["body.weight", "head.bias"])


def test_use_ema_without_ema_weights_is_an_error_listing_the_entries(tmp_path):
    path = save({"state_dict": Small().state_dict(), "epoch": 1}, tmp_path / "w.pt")
    with pytest.raises(
        GroupwiseError, match=r"use_ema=true: .* no EMA .*\['state_dict', 'epoch'\]"
    ):
        load_pretrained(Small(), path, source_roles, use_ema=True)


def test_a_lightning_checkpoint_loads_with_its_attribute_as_prefix(tmp_path):
    source = LeNet(1, 5)
    path = save(lightning_checkpoint(source), tmp_path / "epoch=3.ckpt")
    target = LeNet(1, 5)
    report = load_pretrained(target, path, source_roles, prefix="model.")
    assert len(report.loaded) == 10 and not report.unexpected and not report.missing
    assert report.key_changes == ["prefix 'model.': took 10 of 10 tensors"]
    assert_same_weights(target, source.state_dict(), source.state_dict())


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_other_libraries_objects_in_a_checkpoint_are_left_unbuilt_and_reported(tmp_path, legacy):
    source = Small()
    checkpoint = lightning_checkpoint(
        source, hyper_parameters={"data": pathlib.PosixPath("/d"), "args": argparse.Namespace(lr=1)}
    )
    path = save(checkpoint, tmp_path / "w.ckpt", _use_new_zipfile_serialization=not legacy)
    target = Small()
    report = load_pretrained(target, path, source_roles, prefix="model.")
    assert report.unbuilt == {
        "hyper_parameters.data": "pathlib.PosixPath",
        "hyper_parameters.args": "argparse.Namespace",
    }
    assert_same_weights(target, source.state_dict(), source.state_dict())
    assert (
        "  not built      2 entries of other libraries' classes, neither imported nor run (not "
        "weights): hyper_parameters.data (pathlib.PosixPath), hyper_parameters.args "
        "(argparse.Namespace)" in format_report(report)
    )


def test_an_averaged_models_ema_loads_without_its_counter(tmp_path):
    """torchvision's reference scripts keep their EMA as a torch AveragedModel: `module.` on
    every weight's key, beside `n_averaged`."""
    live = Small()
    ema = torch.optim.swa_utils.AveragedModel(live, use_buffers=True)
    with torch.no_grad():
        live.body.weight.add_(1.0)  # the live weights move on; the average stays
    path = save({"model": live.state_dict(), "model_ema": ema.state_dict()}, tmp_path / "w.pth")
    target = Small()
    report = load_pretrained(target, path, source_roles, use_ema=True, strict=True)
    assert report.key_changes == [
        "AveragedModel's 'n_averaged' counter dropped",
        "wrapper 'module.' removed from every key",
    ]
    assert_same_weights(target, ema.module.state_dict(), ema.module.state_dict())
    assert not torch.equal(target.body.weight, live.body.weight)


def test_safetensors_load(tmp_path):
    source = Small()
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    target = Small()
    report = load_pretrained(target, tmp_path / "model.safetensors", source_roles)
    assert report.source == "safetensors" and len(report.loaded) == 9
    assert_same_weights(target, source.state_dict(), source.state_dict())


def test_a_torchvision_weights_name_resolves_through_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = torchvision_cache(tmp_path, "MobileNet_V3_Small_Weights.IMAGENET1K_V1")
    import torchvision

    model = torchvision.models.mobilenet_v3_small(num_classes=7)
    report = load_pretrained(model, "MobileNet_V3_Small_Weights.IMAGENET1K_V1", source_roles)
    assert report.source == "torchvision weights"
    assert set(report.skipped_shape) == {"classifier.3.weight", "classifier.3.bias"}
    state = torch.load(cached, weights_only=True)
    assert_same_weights(model, state, report.loaded)


def test_an_unknown_torchvision_weights_name_is_an_error(tmp_path):
    with pytest.raises(GroupwiseError, match=r"ResNet51_Weights.IMAGENET1K_V2: not a torchvision"):
        load_pretrained(Small(), "ResNet51_Weights.IMAGENET1K_V2", source_roles)


@pytest.mark.parametrize(
    "wrappers", [["module."], ["_orig_mod."], ["_orig_mod.", "module."]], ids="+".join
)
def test_wrappers_on_every_key_are_removed(tmp_path, wrappers):
    source = Small()
    prefix = "".join(wrappers)
    path = save({prefix + k: v for k, v in source.state_dict().items()}, tmp_path / "w.pt")
    target = Small()
    report = load_pretrained(target, path, source_roles)
    assert len(report.loaded) == 9
    assert report.key_changes == [f"wrapper '{w}' removed from every key" for w in wrappers]


def test_a_wrapper_on_only_some_keys_stays(tmp_path):
    state = Small().state_dict()
    state["module.extra"] = torch.zeros(1)
    report = load_pretrained(Small(), save(state, tmp_path / "w.pt"), source_roles)
    assert report.unexpected == ["module.extra"] and not report.key_changes


def test_prefix_takes_one_sub_tree(tmp_path):
    source = Small()
    detector = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    detector["roi_heads.cls.weight"] = torch.zeros(3, 8)
    target = Small()
    report = load_pretrained(
        target, save(detector, tmp_path / "w.pt"), source_roles, prefix="backbone."
    )
    assert report.key_changes == ["prefix 'backbone.': took 9 of 10 tensors"]
    assert len(report.loaded) == 9 and not report.unexpected
    assert_same_weights(target, source.state_dict(), source.state_dict())


def test_a_prefix_no_key_has_is_an_error_showing_the_keys(tmp_path):
    path = save(Small().state_dict(), tmp_path / "w.pt")
    with pytest.raises(GroupwiseError, match=r"prefix='backbone\.': no key .* start \['body.bias'"):
        load_pretrained(Small(), path, source_roles, prefix="backbone.")


def test_rename_rules_apply_in_order(tmp_path):
    source = Small()
    state = {
        k.replace("body", "stem.0").replace("head", "fc"): v for k, v in source.state_dict().items()
    }
    target = Small()
    report = load_pretrained(
        target,
        save(state, tmp_path / "w.pt"),
        source_roles,
        rename=[[r"^stem\.0\.", "stem."], [r"^stem\.", "body."], [r"^fc\.(\w+)$", r"head.\1"]],
    )
    assert len(report.loaded) == 9
    assert report.key_changes == [
        r"rename ['^stem\.0\.', 'stem.']: 2 keys",
        r"rename ['^stem\.', 'body.']: 2 keys",
        r"rename ['^fc\.(\w+)$', 'head.\1']: 2 keys",
    ]
    assert_same_weights(target, source.state_dict(), source.state_dict())


def test_rename_onto_one_name_and_rename_of_nothing_are_errors(tmp_path):
    path = save(Small().state_dict(), tmp_path / "w.pt")
    with pytest.raises(GroupwiseError, match=r"gives two tensors the name 'x'"):
        load_pretrained(Small(), path, source_roles, rename=[[r"^body\.weight$|^body\.bias$", "x"]])
    with pytest.raises(GroupwiseError, match=r"\['\^backbone', ''\] renames no key \(a typo\?\)"):
        load_pretrained(Small(), path, source_roles, rename=[["^backbone", ""]])


def test_every_bad_option_is_reported_at_once():
    with pytest.raises(GroupwiseError) as err:
        check_options(
            {
                "path": "w.pt",
                "rename": [["(", "x"], ["a"], ["(?P<x>a)", r"\g<y>"]],
                "exclude": ["["],
            }
        )
    assert [p.split(":")[0] for p in err.value.problems] == [
        "pretrained.rename[0]=['(', 'x']",
        "pretrained.rename[1]=['a']",
        "pretrained.rename[2]=['(?P<x>a)', '\\\\g<y>']",
        "pretrained.exclude",
    ]


def test_rgb_first_conv_is_adapted_to_one_channel_by_summing(tmp_path):
    source = LeNet(3, 5)
    target = LeNet(1, 5)
    path = save(source.state_dict(), tmp_path / "w.pt")
    report = load_pretrained(target, path, source_roles, adapt_input_channels=True)
    assert report.adapted == {"conv1.weight": {"checkpoint": [6, 3, 5, 5], "model": [6, 1, 5, 5]}}
    assert "conv1.weight" in report.loaded and not report.skipped_shape
    grey = torch.rand(2, 1, 32, 32)
    # a grey image is R = G = B: the adapted conv sees it as the RGB conv saw the colour image
    torch.testing.assert_close(target.conv1(grey), source.conv1(grey.expand(-1, 3, -1, -1)))


def test_rgb_first_conv_is_repeated_and_rescaled_for_more_channels(tmp_path):
    source, target = LeNet(3, 5), LeNet(6, 5)
    load_pretrained(
        target,
        save(source.state_dict(), tmp_path / "w.pt"),
        source_roles,
        adapt_input_channels=True,
    )
    uniform = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(
        target.conv1(uniform.expand(-1, 6, -1, -1)), source.conv1(uniform.expand(-1, 3, -1, -1))
    )


def test_without_adapt_the_first_conv_is_skipped_with_advice(tmp_path):
    report = load_pretrained(
        LeNet(1, 5), save(LeNet(3, 5).state_dict(), tmp_path / "w.pt"), source_roles
    )
    assert "conv1.weight" in report.skipped_shape
    assert "pretrained.adapt_input_channels=true would adapt it" in format_report(report)


def test_a_checkpoint_sharing_no_tensor_is_an_error_showing_both_sides_and_the_likely_fix(tmp_path):
    path = save({f"net.{k}": v for k, v in Small().state_dict().items()}, tmp_path / "w.pt")
    with pytest.raises(GroupwiseError) as err:
        load_pretrained(Small(), path, source_roles)
    assert "shares no tensor (same key and shape) with the model" in str(err.value)
    assert "the keys most alike: 'net.body.weight' (checkpoint) ~ 'body.weight' (model)" in str(
        err.value
    )
    assert "try pretrained.prefix=net. (it would load 9 of the model's 9 tensors)" in str(err.value)

    wrapped = nn.Sequential()
    wrapped.add_module("encoder", Small())
    with pytest.raises(GroupwiseError, match=r"try \"pretrained.rename=\[\['\^', 'encoder.'\]\]\""):
        load_pretrained(wrapped, save(Small().state_dict(), tmp_path / "plain.pt"), source_roles)


def test_loading_nothing_shows_the_keys_most_alike_not_the_first_and_the_rename_that_fits(
    tmp_path,
):
    # As Hugging Face files order them: buffers first, under another root name.
    state = Small().state_dict()
    first = {k: v for k, v in state.items() if k.startswith("norm.")}
    ordered = {**first, **state}
    path = save({f"encoder.layers.{k}": v for k, v in ordered.items()}, tmp_path / "w.pt")
    wrapped = nn.Sequential()
    wrapped.add_module("net", Small())
    with pytest.raises(GroupwiseError) as err:
        load_pretrained(wrapped, path, source_roles)
    message = str(err.value)
    assert (
        "the keys most alike: 'encoder.layers.body.weight' (checkpoint) ~ 'net.body.weight' "
        "(model), 'encoder.layers.head.weight' (checkpoint) ~ 'net.head.weight' (model), "
    ) in message
    assert "num_batches_tracked" not in message
    hint = "try \"pretrained.rename=[['^encoder\\.layers\\.', 'net.']]\" (it would load 9 of the"
    assert hint in message
    # The hint works.
    report = load_pretrained(wrapped, path, source_roles, rename=[[r"^encoder\.layers\.", "net."]])
    assert len(report.loaded) == 9


def test_a_folded_shape_group_still_shows_why_it_did_not_load():
    shapes = {
        f"layer{i}.{j}.weight": {"checkpoint": [8, 4], "model": [2, 4]}
        for i in range(2)
        for j in range(5)
    }
    assert fold_shapes(shapes) == [
        "layer0.* (5, e.g. layer0.0.weight [8, 4] -> [2, 4])",
        "layer1.* (5, e.g. layer1.0.weight [8, 4] -> [2, 4])",
    ]


def test_strict_refuses_any_unexpected_missing_or_mis_shaped_key(tmp_path):
    state = Small(classes=5).state_dict()
    state["extra"] = torch.zeros(1)
    del state["norm.bias"]
    with pytest.raises(GroupwiseError) as err:
        load_pretrained(Small(), save(state, tmp_path / "w.pt"), source_roles, strict=True)
    message = str(err.value)
    assert message.startswith(f"pretrained.strict=true: pretrained.path={tmp_path / 'w.pt'}")
    assert (
        "unexpected 1: extra; missing 1: norm.bias; skipped_shape 2: head.weight [5, 8] -> "
        "[3, 8], head.bias [5] -> [3]" in message
    )
    # Excluded on purpose is not a misfit: a new head excluded under strict=true loads.
    report = load_pretrained(
        Small(classes=3),
        save(Small(classes=5).state_dict(), tmp_path / "ok.pt"),
        source_roles,
        strict=True,
        exclude=[r"^head\."],
    )
    assert len(report.loaded) == 7


def test_long_key_lists_fold_by_prefix():
    keys = [f"layer{i}.{j}.conv.weight" for i in range(1, 4) for j in range(20)] + ["fc.weight"]
    assert fold_by_prefix(keys) == ["layer1.* (20)", "layer2.* (20)", "layer3.* (20)", "fc.weight"]
    assert fold_by_prefix(keys[:3]) == keys[:3]
    few_blocks = [f"layer1.{j}.{p}" for j in range(3) for p in ("weight", "bias")]
    assert fold_by_prefix([*few_blocks, "a", "b", "c"]) == ["layer1.* (6)", "a", "b", "c"]
    fpn = [f"fpn.{kind}.{i}.0.{p}" for kind in ("inner", "layer") for i in range(4) for p in "wb"]
    assert fold_by_prefix(fpn) == ["fpn.inner.* (8)", "fpn.layer.* (8)"]


def test_the_report_names_source_changes_counts_and_share(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(num_classes=10)
    path = save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "w.pt")
    _, report = build_with_pretrained(
        lambda: torchvision.models.resnet18(num_classes=5), path, source_roles, exclude=[r"^fc\."]
    )
    text = format_report(report)
    assert text.splitlines()[:3] == [
        f"pretrained: {path} (torch zip checkpoint (memory-mapped))",
        "  keys           wrapper 'module.' removed from every key",
        "  loaded         120 tensors, 11,176,512 of 11,179,077 parameters (99.9%)",
    ]
    assert "  excluded       2 by '^fc\\.': fc.weight, fc.bias" in text
    assert "  missing" not in text and "  unexpected" not in text


# --- safety -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
        (lambda p: (p.write_bytes(b"not a checkpoint at all"), p)[1], "not a readable PyTorch checkpoint"),
        (lambda p: (p.write_bytes(_saved()[:200]), p)[1], "not a readable PyTorch checkpoint"),
        (lambda p: (p.write_bytes(_saved()[:-100]), p)[1], "not a readable PyTorch checkpoint"),
        (lambda p: (p.write_bytes(_saved(legacy=True)[:300]), p)[1], "not a readable PyTorch checkpoint"),
        (lambda p: save([1, 2, 3], p), "holds no tensors by name"),
        (lambda p: save(nn.Linear(2, 2), p), r"no tensors by name \(the file is a whole torch\.nn\.modules\.linear\.Linear\).*save its state_dict"),
        (lambda p: save({"model": nn.Linear(2, 2)}, p), "no tensors by name \\(model is a whole torch"),
        (lambda p: (p.write_bytes(_saved_safetensors()[:-10]), p)[1], "not a readable safetensors file"),
    ],
    ids=["missing", "directory", "empty", "garbage", "truncated-head", "truncated-tail",
         "truncated-legacy", "no-tensors", "whole-model", "whole-model-inside",
         "truncated-safetensors"],
)  # fmt: skip
def test_unreadable_checkpoints_are_clear_errors(tmp_path, make, expected):
    path = make(tmp_path / "w.pt")
    with pytest.raises(GroupwiseError, match=expected) as err:
        read_weights(path)
    assert f"pretrained.path={path}" in str(err.value)


def _saved(legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(Small().state_dict(), buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _saved_safetensors() -> bytes:
    from safetensors.torch import save

    return save(Small().state_dict())


def training_checkpoint(payload) -> dict:
    """An ordinary training checkpoint (weights, optimizer, args) with `payload` among its extras."""
    model = Small()
    return {
        "state_dict": model.state_dict(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
        "args": argparse.Namespace(lr=0.1, data_dir=pathlib.PosixPath("/data")),
        "callbacks": {"writer": payload},
    }


@pytest.mark.parametrize("inside", ["raw", "training-checkpoint"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path, legacy, inside):
    marker = tmp_path / "pwned"
    checkpoint = (
        {"fc1.weight": torch.zeros(1), "payload": CreatesFile(marker)}
        if inside == "raw"
        else training_checkpoint(CreatesFile(marker))
    )
    path = save(checkpoint, tmp_path / "evil.pt", _use_new_zipfile_serialization=not legacy)
    # Read without running: torch lists a zip checkpoint's globals, the legacy format is
    # disassembled here; both name what the payload calls.
    with pytest.raises(
        GroupwiseError,
        match=r"refused: the checkpoint's pickle asks to build (io|builtins)\.open, not just "
        r"tensors, and could run code",
    ):
        build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    assert not marker.exists()

    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


class AttributeDict(dict):
    """A dict subclass among the extras, as some libraries keep hyper-parameters."""


def test_a_dict_subclass_torchs_unpickler_cannot_fill_says_how_to_get_the_weights(tmp_path):
    checkpoint = training_checkpoint(AttributeDict(lr=0.1))
    with pytest.raises(GroupwiseError) as err:
        read_weights(save(checkpoint, tmp_path / "w.pt"))
    message = str(err.value)
    # torch's own cause (its wording is torch's), naming the class, then the way out.
    assert "(WeightsUnpickler error: Can only SETITEM" in message
    assert "Unbuilt(tests.test_pretrained.AttributeDict)" in message
    assert message.endswith("extract its weights as the README's Pretrained > Safety section shows")


class OpensZipFile:
    """A payload through a class no list of dangerous names holds: building it writes a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return zipfile.ZipFile, (self.target, "w")


class WritesOnSetState:
    """A payload in a class's own code: unpickling builds it, and its __setstate__ writes."""

    def __init__(self, target):
        self.target = str(target)

    def __getstate__(self):
        return {"target": self.target}

    def __setstate__(self, state):
        pathlib.Path(state["target"]).write_text("pwned")


@pytest.mark.parametrize("payload", [OpensZipFile, WritesOnSetState])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_payload_left_unbuilt_never_runs_and_is_reported(tmp_path, legacy, payload):
    marker = tmp_path / "pwned"
    checkpoint = training_checkpoint(payload(marker))
    path = save(checkpoint, tmp_path / "last.pt", _use_new_zipfile_serialization=not legacy)
    target = Small()
    report = load_pretrained(target, path, source_roles, strict=True)
    assert not marker.exists()
    assert report.unbuilt == {
        "args": "argparse.Namespace",
        "callbacks.writer": "zipfile.ZipFile"
        if payload is OpensZipFile
        else "tests.test_pretrained.WritesOnSetState",
    }
    assert_same_weights(target, checkpoint["state_dict"], checkpoint["state_dict"])

    torch.load(path, weights_only=False)  # the payload is real
    assert marker.exists()
