"""The parts of the GPU benchmark that run whole processes: a pretrained checkpoint loaded to
the device, a `torchrun` DDP run of the CLI, and a run killed mid-epoch and resumed against
an uninterrupted one. Each returns a dict for the table; `benchmarks/gpu.py` runs them."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.pretrained_memory import in_fresh_process, make_checkpoint, measure
from src.training.checkpoints import MODEL, OPTIMIZER, PROGRESS, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# One process on one machine talks to itself: over the loopback interface, whatever else the
# machine has (a sandbox's other interfaces may lead nowhere). A value already set wins.
LOOPBACK = {"NCCL_SOCKET_IFNAME": "lo", "GLOO_SOCKET_IFNAME": "lo"}
# cuBLAS is deterministic only with a fixed workspace (PyTorch's reproducibility notes).
DETERMINISTIC_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def pretrained_load(model_name: str, device: str, fresh: bool) -> dict:
    """A `model_name` checkpoint (torchvision's 1000-class layout, random weights) into a
    10-class model that ends on `device`: groupwise's run set-up against the seed's way
    (benchmarks/pretrained_memory.py), each in a fresh process unless not `fresh` (then
    in this one, whose memory peaks mean nothing: a check that the code runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / f"{model_name}.pt"
        size = make_checkpoint(model_name, checkpoint)
        load = in_fresh_process if fresh else measure
        runs = {
            approach: load(approach, model_name, str(checkpoint), device)
            for approach in ("seed", "groupwise")
        }
    return {"model": model_name, "checkpoint_bytes": size, **runs}


def probe(args: list[str], overrides: list[str], env: dict, torchrun: bool = False):
    """`python -m benchmarks.cli_probe ARGS -- OVERRIDES` (under torchrun, one process)."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    command = [sys.executable, *(launcher if torchrun else []), "-m", "benchmarks.cli_probe"]
    start = time.perf_counter()
    result = subprocess.run(
        [*command, *args, "--", *overrides],
        cwd=ROOT,
        env={**LOOPBACK, **os.environ, "PYTHONPATH": _python_path(), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, time.perf_counter() - start


def torchrun_ddp(overrides: list[str]) -> dict:
    """The real CLI under a one-process `torchrun`: it must join the process group (NCCL for
    CUDA tensors), wrap the model in DDP, train, and write its checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, record = Path(tmp) / "run", Path(tmp) / "record.json"
        result, seconds = probe(
            ["--record", str(record)], [*overrides, f"hydra.run.dir={run_dir}"], {}, True
        )
        if result.returncode != 0:
            return {"ok": False, "error": _last_lines(result), "seconds": seconds}
        facts = json.loads(record.read_text())
        progress = load_checkpoint(run_dir / "checkpoints/last.pt")[PROGRESS]
        metrics = json.loads((run_dir / "metrics.json").read_text())
    ddp = facts["ddp"][0] if facts["ddp"] else None
    return {
        "ok": ddp is not None and progress["global_step"] == facts["optimizer_steps"] > 0,
        "ddp": ddp,
        "optimizer_steps": facts["optimizer_steps"],
        "checkpoint_step": progress["global_step"],
        "val_acc": metrics["val/acc"],
        "seconds": seconds,
    }


# Long: the resume story in order (runs, the kill, the resume, the comparison), read as one
def resume_exactness(overrides: list[str], kill_after_step: int, repeat: bool) -> dict:
    """One run uninterrupted (twice with `repeat`: run-to-run determinism of the kernels), one
    killed by SIGKILL right after optimizer step `kill_after_step` and resumed from its last
    checkpoint; the final checkpoints compared tensor by tensor. Deterministic kernels where
    PyTorch has them (`cli_probe --deterministic`); the ops that have none are listed."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uninterrupted = ["whole", "again"] if repeat else ["whole"]
        facts = {}
        for name in uninterrupted:
            record = tmp / f"{name}.json"
            run = [*overrides, f"hydra.run.dir={tmp / name}"]
            result, _ = probe(["--deterministic", "--record", str(record)], run, DETERMINISTIC_ENV)
            if result.returncode != 0:
                return {"ok": False, "error": f"{name}: {_last_lines(result)}"}
            facts[name] = json.loads(record.read_text())
        split = [*overrides, f"hydra.run.dir={tmp / 'split'}"]
        killed, _ = probe(
            ["--deterministic", "--kill-after-step", str(kill_after_step)], split, DETERMINISTIC_ENV
        )
        if killed.returncode != -9:
            return {"ok": False, "error": f"not killed (exit {killed.returncode})"}
        at_kill = load_checkpoint(tmp / "split/checkpoints/last.pt")[PROGRESS]
        resumed, _ = probe(["--deterministic"], [*split, "resume=true"], DETERMINISTIC_ENV)
        if resumed.returncode != 0:
            return {"ok": False, "error": f"resume: {_last_lines(resumed)}"}
        final = {name: load_checkpoint(tmp / name / "checkpoints/last.pt") for name in facts}
        split_final = load_checkpoint(tmp / "split/checkpoints/last.pt")
    differences = {name: _max_difference(final["whole"], final[name]) for name in final}
    differences["resumed"] = _max_difference(final["whole"], split_final)
    return {
        # A resume restores the state bit for bit; with kernels that are not run-to-run
        # deterministic it matches only as closely as two uninterrupted runs do.
        "ok": differences["resumed"] <= differences.get("again", 0.0),
        "identical": differences["resumed"] == 0.0,
        "killed_after_step": kill_after_step,
        "resumed_from": {k: at_kill[k] for k in ("epoch", "global_step", "batches_in_epoch")},
        "final_step": split_final[PROGRESS]["global_step"],
        "max_abs_difference": differences,
        "nondeterministic_ops": facts["whole"]["nondeterministic_ops"],
    }


def _max_difference(expected: dict, actual: dict) -> float:
    """The largest absolute difference over the weights and the optimizer's state tensors."""
    pairs = [(expected[MODEL][k], actual[MODEL][k]) for k in expected[MODEL]]
    for index, state in expected[OPTIMIZER]["state"].items():
        pairs += [
            (t, actual[OPTIMIZER]["state"][index][k])
            for k, t in state.items()
            if isinstance(t, torch.Tensor)
        ]
    return max(
        ((a.double() - b.double()).abs().max().item() if a.numel() else 0.0) for a, b in pairs
    )


def _python_path() -> str:
    """This checkout first (the module runs from it), then whatever the caller's path holds
    (packages installed beside the environment's, e.g. with pip --target)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def _last_lines(result: subprocess.CompletedProcess, n: int = 3) -> str:
    """The error a failed run ended with (under torchrun, the worker's, not the launcher's)."""
    lines = (result.stderr or result.stdout).strip().splitlines()
    errors = [line for line in lines if "Error" in line and "ChildFailedError" not in line]
    return " | ".join((errors or lines)[-n:])
