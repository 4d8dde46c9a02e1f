"""Checkpoints saved by timm, DeiT's and torchvision's training scripts, MMEngine and Lightning
(tests/fixtures/checkpoints/, made by make_checkpoints.py there with the libraries' own code)
load through the real CLI, bit for bit, the EMA variants with their EMA weights; tensors that
share storage load as independent parameters and the run's checkpoint is the model's size.

Each run trains one epoch at lr 0 on two images per class: every weight stays what was loaded,
and `checkpoints/last.pt` holds the model as the run has it, to compare with the source.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from src.models.lenet import LeNet
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e  # the CLI, once per checkpoint

FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
NAMESPACE = {"args": "argparse.Namespace"}
# name: (file, extra overrides, which weights, where the report says they were, unbuilt entries)
CASES = {
    "timm": ("timm_model_best.pth.tar", [], "weights", "'state_dict'", NAMESPACE),
    "timm-ema": ("timm_model_best.pth.tar", ["pretrained.use_ema=true"], "ema", "'state_dict_ema'", NAMESPACE),
    "deit": ("deit_checkpoint.pth", [], "weights", "'model'", NAMESPACE),
    "deit-ema": ("deit_checkpoint.pth", ["pretrained.use_ema=true"], "ema", "'model_ema'", NAMESPACE),
    "torchvision": ("torchvision_model_1.pth", [], "weights", "'model'", NAMESPACE),
    "torchvision-ema": ("torchvision_model_1.pth", ["pretrained.use_ema=true"], "ema", "'model_ema'", NAMESPACE),
    "mmengine": ("mmengine_epoch_1.pth", ["pretrained.prefix=backbone."], "weights", "'state_dict'", None),
    "lightning": ("lightning_epoch=0.ckpt", ["pretrained.prefix=model."], "weights", "'state_dict'",
                  {"hyper_parameters.data_dir": "pathlib.PosixPath",
                   "hyper_parameters.cfg": "omegaconf.dictconfig.DictConfig"}),
}  # fmt: skip


def digest(tensor: torch.Tensor) -> str:
    """As make_checkpoints.py hashes the source's tensors."""
    data = tensor.detach().cpu().contiguous()
    header = f"{data.dtype}{list(data.shape)}".encode()
    return hashlib.sha256(header + data.view(torch.uint8).numpy().tobytes()).hexdigest()


def run_in_one_process(tmp_path, cases: dict[str, list[str]]) -> dict[str, dict]:
    """`python -m src.run <overrides>` for each case, one process for all (tests/cli_in_process)."""
    (tmp_path / "cases.json").write_text(json.dumps(list(cases.values())))
    subprocess.run(
        [sys.executable, "-m", "tests.cli_in_process", "cases.json", "results.json"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, timeout=600,
    )  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    return dict(zip(cases, results, strict=True))


def trained_model(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_library_checkpoints_load_bit_equal_and_shared_storage_comes_apart(tmp_path):
    source = LeNet(1, 5).state_dict()
    flat = torch.cat([t.flatten() for t in source.values()] * 2)  # live + EMA in one buffer
    views, offset = {}, 0
    for key, tensor in source.items():
        views[key] = flat[offset : offset + tensor.numel()].view_as(tensor)
        offset += tensor.numel()
    torch.save(views, tmp_path / "views.pt")
    save_file(source, tmp_path / "model.safetensors")

    # lr 1e-30 (0 is refused): each step is below every weight's float32 resolution, so the
    # trained checkpoint holds the weights as loaded.
    common = ["trainer.max_epochs=1", "optimizer.lr=1e-30", "dataset.shots_per_class=2",
              "pretrained=none", "pretrained.strict=true"]  # fmt: skip
    cases = {
        name: [*common, f"pretrained.path='{FIXTURES / file}'", *extra, f"hydra.run.dir={tmp_path / name}"]
        for name, (file, extra, *_) in CASES.items()
    }  # fmt: skip
    for name in ("views.pt", "model.safetensors"):
        cases[name] = [*common, f"pretrained.path={tmp_path / name}", f"hydra.run.dir={tmp_path / name}-run"]  # fmt: skip
    results = run_in_one_process(tmp_path, cases)
    for name, result in results.items():
        assert result["code"] == 0, f"{name}: {result['stderr'][-2000:]}"

    for name, (file, _, which, entry, unbuilt) in CASES.items():
        report = json.loads((tmp_path / name / "pretrained_report.json").read_text())
        assert report["source"] == f"torch zip checkpoint (memory-mapped), weights under {entry}"
        assert report["loaded_share"] == 1.0 and report["counts"]["loaded"] == 10, name
        loaded = {k: digest(v) for k, v in trained_model(tmp_path / name).items()}
        assert loaded == EXPECTED[file][which], name
        if unbuilt is not None:
            assert report["unbuilt"] == unbuilt, name
        if which == "ema":  # the EMA is not the live weights
            assert EXPECTED[file]["ema"] != EXPECTED[file]["weights"]
    mmengine = json.loads((tmp_path / "mmengine" / "pretrained_report.json").read_text())
    assert set(mmengine["unbuilt"].values()) == {
        "mmengine.logging.history_buffer.HistoryBuffer",
        "numpy._core.multiarray.scalar",
    }
    assert "not built      5 entries of other libraries' classes" in results["mmengine"]["stdout"]
    tv = json.loads((tmp_path / "torchvision-ema" / "pretrained_report.json").read_text())
    assert tv["key_changes"] == [
        "AveragedModel's 'n_averaged' counter dropped",
        "wrapper 'module.' removed from every key",
    ]

    expected_source = {k: digest(v) for k, v in source.items()}
    for name in ("views.pt", "model.safetensors"):
        assert {k: digest(v) for k, v in trained_model(tmp_path / f"{name}-run").items()} == (
            expected_source
        )
    views_report = json.loads((tmp_path / "views.pt-run" / "pretrained_report.json").read_text())
    assert len(views_report["copied"]) == 10
    # The run's checkpoint holds the model, not the source's buffer twice its size.
    sizes = {
        name: (tmp_path / run / "checkpoints" / "last.pt").stat().st_size
        for name, run in (("views", "views.pt-run"), ("plain", "model.safetensors-run"))
    }
    assert sizes["views"] < 1.02 * sizes["plain"], sizes
