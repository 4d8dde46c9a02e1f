"""How long it takes to turn param-group rules into an optimizer, against MMEngine.

    python benchmarks/param_groups_bench.py                         # groupwise only
    /work/wt/venv-mmengine/bin/python benchmarks/param_groups_bench.py   # and MMEngine

Times, from a model and its rules to a constructed AdamW: groupwise's `parse_specs` +
`resolve` + `optimizer_groups` (one optimizer group per named group, x decay / no decay),
and, where MMEngine is importable, its `DefaultOptimWrapperConstructor` on the same rules
(`custom_keys` substrings for our regexes, `bias_decay_mult=0, norm_decay_mult=0` for our
1-D rule), which makes one optimizer group per tensor. The two are measured alternately in
the same process and the ratio is printed. Models live on the meta device: no memory, no
weights, only names and shapes. Targets on the 2-core CI machine: <= 50 ms for 10,000
tensors and 10 patterns, <= 5 ms for torchvision's vit_l_16.
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.optim.explain import explain
from src.optim.param_groups import optimizer_groups
from src.optim.resolve import resolve
from src.optim.specs import accepted_keys, parse_specs

BASE_LR, WEIGHT_DECAY = 1e-3, 0.05
HAS_MMENGINE = importlib.util.find_spec("mmengine") is not None


class Synthetic(nn.Module):
    """10,000 tensors: 50 stages x 20 blocks x (4 linears + 1 LayerNorm), weight and bias."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.ModuleList(
                nn.ModuleDict(
                    {
                        "qkv": nn.Linear(8, 24),
                        "proj": nn.Linear(8, 8),
                        "fc1": nn.Linear(8, 32),
                        "fc2": nn.Linear(32, 8),
                        "norm": nn.LayerNorm(8),
                    }
                )
                for _ in range(20)
            )
            for _ in range(50)
        )


# Ten rules that mean the same as regexes (ours) and as substrings (MMEngine's custom_keys):
# each selects one stage's tensors, at its own lr multiplier.
SYNTHETIC_RULES = {f"stages.{s}.": 0.5 + s / 100 for s in (1, 3, 7, 12, 18, 23, 29, 34, 41, 49)}
VIT_RULES = {
    "heads.": {"lr_mult": 10.0},
    "conv_proj.": {"lr_mult": 0.1},
    "class_token": {"lr_mult": 0.1, "decay_mult": 0.0},
    "encoder.pos_embedding": {"lr_mult": 0.1, "decay_mult": 0.0},
}


def ours_config(rules: dict) -> dict:
    config = {}
    for i, (key, rule) in enumerate(rules.items()):
        rule = rule if isinstance(rule, dict) else {"lr_mult": rule}
        spec = {"pattern": key.replace(".", r"\."), "lr_mult": rule["lr_mult"]}
        if "decay_mult" in rule:
            spec["weight_decay_mult"] = rule["decay_mult"]
        config[f"group{i}"] = spec
    return config


def ours(model: nn.Module, config: dict) -> torch.optim.Optimizer:
    specs = parse_specs(config, accepted_keys(torch.optim.AdamW))
    groups = optimizer_groups(resolve(model, specs).groups, BASE_LR, WEIGHT_DECAY)
    return torch.optim.AdamW(groups, lr=BASE_LR, weight_decay=WEIGHT_DECAY)


def mmengine_constructor(rules: dict):
    from mmengine.optim import DefaultOptimWrapperConstructor

    custom_keys = {}
    for key, rule in rules.items():
        rule = rule if isinstance(rule, dict) else {"lr_mult": rule}
        custom_keys[key] = rule
    wrapper = {"type": "OptimWrapper", "optimizer": {"type": "AdamW", "lr": BASE_LR}}
    wrapper["optimizer"]["weight_decay"] = WEIGHT_DECAY
    paramwise = {"custom_keys": custom_keys, "bias_decay_mult": 0.0, "norm_decay_mult": 0.0}
    return DefaultOptimWrapperConstructor(wrapper, paramwise)


def timed(fn) -> tuple[float, float, object]:
    """Wall time and this process's CPU time: on a machine shared with other jobs, the CPU
    time leaves out the waits for a free core."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare(label: str, model: nn.Module, rules: dict, repeats: int, mm_repeats: int, extra=None):
    config = ours_config(rules)
    constructor = mmengine_constructor(rules) if HAS_MMENGINE else None
    tensors = sum(1 for _ in model.parameters())
    ours_times, mm_times = [], []
    for r in range(max(repeats, mm_repeats)):  # alternate: load on the machine hits both alike
        if r < repeats:
            *seconds, optimizer = timed(lambda: ours(model, config))
            ours_times.append(seconds)
        if constructor is not None and r < mm_repeats:
            *seconds, wrapper = timed(lambda: constructor(model))
            mm_times.append(seconds)
    ours_wall, ours_cpu = (statistics.median(t) for t in zip(*ours_times, strict=True))
    print(
        f"{label}: {tensors:,} tensors, {len(rules)} patterns -> "
        f"{len(optimizer.param_groups)} optimizer groups\n"
        f"  groupwise: median {ours_wall * 1e3:.2f} ms wall, {ours_cpu * 1e3:.2f} ms CPU "
        f"(n={repeats})",
        flush=True,
    )
    if mm_times:
        mm_wall, mm_cpu = (statistics.median(t) for t in zip(*mm_times, strict=True))
        print(
            f"  MMEngine: {len(wrapper.optimizer.param_groups):,} optimizer groups, median "
            f"{mm_wall * 1e3:,.1f} ms wall, {mm_cpu * 1e3:,.1f} ms CPU (n={mm_repeats})\n"
            f"  MMEngine / groupwise: {mm_wall / ours_wall:,.0f}x wall, {mm_cpu / ours_cpu:,.0f}x CPU",
            flush=True,
        )
    if extra:
        extra(model)


def layer_decay_and_explain(model: nn.Module) -> None:
    """Costs MMEngine's core has no counterpart for: layer decay and the explain data."""
    config = {
        "blocks": {"pattern": r"^encoder\.layers\.encoder_layer_(\d+)\.", "layer_decay": 0.75},
        "head": {"pattern": r"^heads\.", "lr_mult": 10},
    }
    times = [timed(lambda: ours(model, config))[1] for _ in range(20)]
    resolution = resolve(model, parse_specs(config))
    explain_times = [timed(lambda: explain(resolution, BASE_LR, WEIGHT_DECAY))[1] for _ in range(5)]
    print(
        f"  groupwise with layer decay (24 blocks): median {statistics.median(times) * 1e3:.2f} ms "
        f"CPU; explain (folded names for the table): {statistics.median(explain_times) * 1e3:.2f} "
        "ms CPU",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--mm-repeats-synthetic",
        type=int,
        default=1,
        help="MMEngine takes tens of seconds per run on 10,000 tensors",
    )
    args = parser.parse_args()
    if HAS_MMENGINE:
        import mmengine
        from mmengine.logging import MMLogger

        # It logs a line per tensor; keep that off the console (its formatting is still timed).
        MMLogger.get_instance("mmengine", log_level="ERROR")
        print(f"MMEngine {mmengine.__version__}, torch {torch.__version__}", flush=True)
    else:
        print(f"MMEngine not installed here: groupwise only; torch {torch.__version__}", flush=True)
    with torch.device("meta"):
        synthetic = Synthetic()
        vit = torchvision.models.vit_l_16()
    compare("synthetic", synthetic, SYNTHETIC_RULES, args.repeats, args.mm_repeats_synthetic)
    compare("vit_l_16", vit, VIT_RULES, args.repeats, 10, extra=layer_decay_and_explain)


if __name__ == "__main__":
    main()
