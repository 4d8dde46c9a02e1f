"""The catalogue of bad input: per case its overrides (or a function of the case's own dir
that writes its files and gives them) and the line the CLI must refuse it with. Run by
tests/test_bad_inputs.py, and pointed at a finished run by tests/test_finished_run_read_only.py.

Cases are grouped by kind: wrong types (caught by the schema while Hydra composes), values
out of range or not among the choices, optimizer and param-group values, Hydra's grammar and
unknown names, files, run dirs. The cases run one after another in one process that executes
the command's own `__main__` for each (tests/cli_in_process.py): 60 processes would spend
two minutes importing torch."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from tests.conftest import ROOT, SHIPPED_WEIGHTS, CreatesFile
from tests.generated_data import write_image_folder

FC3 = "param_groups=fc3_boost"


def empty_file(tmp_path):
    (tmp_path / "empty.pt").touch()
    return [f"pretrained.path={tmp_path / 'empty.pt'}"]


def truncated_file(tmp_path):
    (tmp_path / "cut.pt").write_bytes(SHIPPED_WEIGHTS.read_bytes()[:1000])
    return [f"pretrained.path={tmp_path / 'cut.pt'}"]


def code_carrying_file(tmp_path):
    torch.save(
        {"conv1.weight": torch.zeros(1), "x": CreatesFile(tmp_path / "pwned")}, tmp_path / "e.pt"
    )
    return [f"pretrained.path={tmp_path / 'e.pt'}"]


def unrelated_file(tmp_path):
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pt")
    return [f"pretrained.path={tmp_path / 'other.pt'}"]


def a_directory(tmp_path):
    return [f"pretrained.path={tmp_path}"]


def run_dir_is_a_file(tmp_path):
    (tmp_path / "run").touch()  # where the case's hydra.run.dir points
    return []


def cached_folder(case_dir, *overrides: str) -> list[str]:
    """An image folder read through a decoded cache in `case_dir/cache`."""
    root = write_image_folder(case_dir / "data", per_class=2)
    cache_dir = case_dir / "cache"
    return [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.cache=true",
        f"dataset.cache_dir={cache_dir}",
        *overrides,
    ]


def cache_dir_is_a_file(tmp_path):
    overrides = cached_folder(tmp_path)
    (tmp_path / "cache").write_text("")
    return overrides


def damaged_cache(tmp_path):
    """A cache built by the library's own code, then cut short."""
    from src.data.image_folder import image_folder
    from tests.conftest import built_as_a_run_builds

    overrides = cached_folder(tmp_path)
    build = built_as_a_run_builds(image_folder)
    build(
        root=str(tmp_path / "data"),
        cache_dir=str(tmp_path / "cache"),
        batch_size=2,
        seed=0,
        cache=True,
    )
    (version,) = (tmp_path / "cache").glob("*/v-*")  # the one version of the one cache
    with open(version / "pixels.u8", "r+b") as pixels:
        pixels.truncate(10)
    return overrides


def unreadable_image_cached(tmp_path):
    overrides = cached_folder(tmp_path)
    (tmp_path / "data" / "red" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return overrides


def integer_weights(tmp_path):
    """The shipped weights as int64, saved by safetensors' own code: loaded, they trained to a
    loss of 1e28."""
    from safetensors.torch import save_file

    weights = torch.load(SHIPPED_WEIGHTS, weights_only=True)
    save_file({k: (v * 1000).to(torch.int64) for k, v in weights.items()}, tmp_path / "int.st")
    return [f"pretrained.path={tmp_path / 'int.st'}"]


def one_class_folder(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=2)
    for name in ("blue", "green"):
        shutil.rmtree(root / name)
    return ["dataset=image_folder", f"dataset.root={root}"]


def float_image_cached(tmp_path):
    """A 32-bit float TIFF, whose range no file states, decoded for the cache at build time."""
    overrides = cached_folder(tmp_path)
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "data" / "red" / "f.tif")
    return overrides


CASES = {
    # wrong types: the schema's, checked while Hydra composes
    "epochs-bool": (["trainer.max_epochs=true"], "trainer.max_epochs=True: must be an integer"),
    "epochs-fraction": (["trainer.max_epochs=2.5"], "trainer.max_epochs=2.5: must be an integer"),
    "batch-size-text": (["dataset.batch_size=abc"], "dataset.batch_size=abc: must be an integer"),
    "batch-size-bool": (["dataset.batch_size=true"], "dataset.batch_size=True: must be an integer"),
    "accumulate-bool": (["trainer.accumulate_grad_batches=true"], "must be an integer"),
    "grad-clip-text": (["trainer.grad_clip=abc"], "trainer.grad_clip=abc: must be a number"),
    "use-ema-text": (
        ["pretrained.use_ema=maybe"],
        "pretrained.use_ema=maybe: must be true or false",
    ),
    "pretrained-key-typo": (["pretrained.exlude=[]"], "did you mean pretrained.exclude?"),
    "image-size-0": (["dataset.image_size=0"], "dataset.image_size=0: must be >= 1"),
    "exclude-not-list": (["pretrained.exclude=3"], "pretrained.exclude: must be a list"),
    "seed-text": (["seed=x"], "seed=x: must be an integer"),
    "dry-run-text": (["dry_run=maybe"], "dry_run=maybe: must be true or false"),
    # OmegaConf reads any number but 0 as true: 2 is not a switch's value.
    "bool-number": (["trainer.channels_last=2"], "trainer.channels_last=2: must be true or false"),
    "bool-number-top": (["weight_decay_1d=-1"], "weight_decay_1d=-1: must be true or false"),
    "class-text": (["dataset.classes=[a]"], "dataset.classes[0]=a: must be an integer"),
    # ranges and choices
    "zero-epochs": (["trainer.max_epochs=0"], "trainer.max_epochs=0: must be >= 1"),
    "negative-epochs": (["trainer.max_epochs=-3"], "trainer.max_epochs=-3: must be >= 1"),
    "batch-size-0": (["dataset.batch_size=0"], "dataset.batch_size=0: must be >= 1"),
    "log-every-0": (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0: must be >= 1"),
    "checkpoint-every-0": (["trainer.checkpoint_every_n_steps=0"], "must be >= 1, or null"),
    "accumulate-0": (
        ["trainer.accumulate_grad_batches=0"],
        "accumulate_grad_batches=0: must be >= 1",
    ),
    "grad-clip-0": (["trainer.grad_clip=0"], "trainer.grad_clip=0: must be > 0, or null"),
    "grad-clip-nan": (["trainer.grad_clip=nan"], "trainer.grad_clip=nan: must be a finite number"),
    "precision-8": (["trainer.precision=8"], "trainer.precision=8: must be one of 32, bf16, 16"),
    "monitor-unknown": (["trainer.monitor=acc"], "trainer.monitor=acc: must be one of val/acc"),
    "val-fraction-1.5": (["dataset.val_fraction=1.5"], "dataset.val_fraction=1.5: must be < 1"),
    "no-classes": (["dataset.classes=[]"], "dataset.classes=[]: must be a list of at least 1"),
    "class-twice": (["dataset.classes=[5,5]"], "dataset.classes=[5,5]: must be listed once each"),
    "class-11": (["dataset.classes=[5,11]"], "dataset.classes=[5,11]: each item must be <= 9"),
    "shots-0": (["dataset.shots_per_class=0"], "dataset.shots_per_class=0: must be >= 1, or null"),
    "more-shots-than-exist": (["dataset.shots_per_class=1000"], "digit 5 has only"),
    "negative-seed": (["seed=-1"], "seed=-1: must be >= 0"),
    "step-size-0": (["scheduler.step_size=0"], "scheduler.step_size=0: must be >= 1"),
    "gamma-0": (["scheduler.gamma=0"], "scheduler.gamma=0: must be > 0"),
    "milestone-0": (["scheduler=multistep", "scheduler.milestones=[0,3]"], "must be >= 1"),
    "floor-above-1": (["scheduler=cosine", "scheduler.min_lr_ratio=2"], "must be <= 1"),
    "warmup-too-long": (
        ["scheduler=warmup_cosine", "scheduler.warmup_epochs=30"],
        "warmup_epochs=30",
    ),
    "pct-start-1": (["scheduler=onecycle", "scheduler.pct_start=1"], "pct_start=1: must be < 1"),
    "no-cuda": (["trainer.device=cuda"], "trainer.device=cuda: CUDA is not available"),
    "unknown-device": (["trainer.device=tpu"], "trainer.device=tpu: not a device"),
    "added-trainer-key": (["+trainer.epochs=3"], "trainer.epochs: no such key"),
    # optimizer and param groups
    "negative-lr": (["optimizer.lr=-1"], "optimizer.lr=-1: must be a finite number >= 0"),
    "nan-lr": (["optimizer.lr=nan"], "optimizer.lr=nan: must be a finite number >= 0"),
    "text-lr": (["optimizer.lr=abc"], "optimizer.lr='abc': must be a finite number >= 0"),
    "negative-momentum": (["optimizer.momentum=-1"], "Invalid momentum value: -1"),
    "optimizer-key-typo": (
        ["+optimizer.momentun=0.9"],
        "optimizer.momentun: SGD takes no such key; did you mean optimizer.momentum?",
    ),
    "short-betas": (["optimizer=adamw", "optimizer.betas=[0.9]"], "optimizer (torch.optim.AdamW)"),
    "group-not-a-mapping": (["param_groups.head=3"], "param_groups.head: no such key"),
    "no-such-optimizer": (["optimizer._target_=torch.optim.Adamm"], "no such class"),
    "nan-mult": ([FC3, "param_groups.fc3.lr_mult=nan"], "fc3.lr_mult=nan: must be a finite"),
    "inf-mult": ([FC3, "param_groups.fc3.lr_mult=inf"], "fc3.lr_mult=inf: must be a finite"),
    "negative-mult": ([FC3, "param_groups.fc3.lr_mult=-1"], "fc3.lr_mult=-1: must be >= 0"),
    "matches-nothing": ([FC3, "param_groups.fc3.pattern=fc4"], "'fc4' matches no parameter"),
    "bad-regex": ([FC3, "param_groups.fc3.pattern='fc3\\.('"], "invalid regex"),
    "group-key-typo": ([FC3, "+param_groups.fc3.lr_mul=3"], "lr_mul: did you mean lr_mult?"),
    # Hydra's grammar and names
    "typo-group-key": (
        [FC3, "param_groups.fc3.lr_mul=3"],
        "param_groups.fc3.lr_mul: no such key; did you mean param_groups.fc3.lr_mult?",
    ),
    "typo-key": (["trainer.max_epoch=3"], "did you mean trainer.max_epochs?"),
    "unknown-config-option": (["model=lenett"], "did you mean model=lenet?"),
    "unquoted-regex": ([FC3, "param_groups.fc3.pattern=^fc3"], "cannot parse the override"),
    "unclosed-list": (["dataset.classes=[1,2"], "cannot parse the override"),
    "list-for-config-group": (["trainer=[1]"], "Hydra could not compose the config"),
    # files
    "missing-file": (["pretrained.path=/nonexistent/w.pt"], "/nonexistent/w.pt: no such file"),
    "empty-file": (empty_file, "the file is empty"),
    "truncated-file": (truncated_file, "not a readable PyTorch checkpoint"),
    "code-carrying-file": (code_carrying_file, "refused: the checkpoint's pickle asks to build"),
    "unrelated-file": (unrelated_file, "shares no tensor (same key and shape) with the model"),
    "checkpoint-is-a-directory": (a_directory, "is a directory, not a checkpoint file"),
    "prefix-no-key-has": (["pretrained.prefix=backbone."], "no key of pretrained.path="),
    "rename-renames-nothing": (["pretrained.rename=[['^zzz', 'a']]"], "renames no key"),
    "image-folder-without-root": (["dataset=image_folder"], "dataset.root: required, and not set"),
    "image-folder-missing-root": (
        ["dataset=image_folder", "dataset.root=/nonexistent"],
        "dataset.root=/nonexistent: no such directory",
    ),
    # run dirs
    "run-dir-is-a-file": (run_dir_is_a_file, "/run: cannot be created (File exists)"),
    "nothing-to-resume": (["resume=true"], "resume=true: no checkpoint at"),
    # issue 20: inputs that did something else, or a traceback
    "empty-run-dir": (["hydra.run.dir="], "hydra.run.dir is empty"),
    "empty-pattern": ([FC3, "param_groups.fc3.pattern=''"], "matches every parameter name"),
    "group-given-twice": (
        ["optimizer=sgd", "optimizer.lr=0.1", "optimizer=adamw"],
        "optimizer is given twice (optimizer=sgd ... optimizer=adamw)",
    ),
    "sweep-key-twice": (["-m", "seed=0,1", "seed=2,3"], "seed is given twice"),
    "seed-too-large": (["seed=99999999999999999999"], "must be <= 9223372036854775807"),
    "lenet-image-size-4": (["dataset.image_size=4"], "it takes e.g. dataset.image_size=32"),
    "vit-image-size-30": (
        ["model=vit_b_16", "pretrained=none", "dataset.image_size=30"],
        "dataset.image_size=30: vit_b_16 cuts images into 16x16 patches",
    ),
    "unknown-flag": (["--epochs", "3"], "--epochs: no such flag; options are key=value"),
    # issue 20: more of the same kinds
    "blank-run-dir": (["hydra.run.dir=' '"], "hydra.run.dir is empty"),
    "empty-sweep-dir": (["-m", "seed=0,1", "hydra.sweep.dir="], "hydra.sweep.dir is empty"),
    "caret-pattern": ([FC3, "param_groups.fc3.pattern='^'"], "matches every parameter name"),
    "alternation-pattern": ([FC3, "param_groups.fc3.pattern='fc3|'"], "write param_groups"),
    "key-given-twice": (
        ["trainer.max_epochs=1", "trainer.max_epochs=2"],
        "trainer.max_epochs is given twice",
    ),
    "batch-size-twice": (["dataset.batch_size=8", "dataset.batch_size=16"], "given twice"),
    "lenet-image-size-64": (["dataset.image_size=64"], "cannot take 1x64x64 images"),
    "seed-2-to-the-64": (["seed=18446744073709551616"], "seed=18446744073709551616: must be <="),
    "val-fraction-0": (["dataset.val_fraction=0"], "dataset.val_fraction=0: must be > 0"),
    "test-fraction-1": (["dataset.test_fraction=1"], "dataset.test_fraction=1: must be < 1"),
    "inf-lr": (["optimizer.lr=inf"], "optimizer.lr=inf: must be a finite number"),
    "negative-weight-decay": (["optimizer.weight_decay=-1"], "weight_decay=-1: must be a finite"),
    "epochs-in-exponent": (["trainer.max_epochs=1e3"], "must be an integer"),
    "precision-fp16": (["trainer.precision=fp16"], "trainer.precision=fp16: must be one of"),
    "digits-have-no-workers": (["dataset.num_workers=-1"], "dataset.num_workers: no such key"),
    "negative-shots": (["dataset.shots_per_class=-2"], "shots_per_class=-2: must be >= 1"),
    "no-such-optimizer-config": (["optimizer=lion"], "optimizer=lion: no such optimizer config"),
    "scheduler-typo": (["scheduler=cosin"], "did you mean scheduler=cosine?"),
    "negative-class": (["dataset.classes=[-1]"], "each item must be >= 0"),
    "resume-text": (["resume=maybe"], "resume=maybe: must be true or false"),
    "negative-grad-clip": (["trainer.grad_clip=-1"], "trainer.grad_clip=-1: must be > 0"),
    "milestone-twice": (
        ["scheduler=multistep", "scheduler.milestones=[3,3]"],
        "must be listed once each",
    ),
    "negative-checkpoint-steps": (["trainer.checkpoint_every_n_steps=-5"], "must be >= 1"),
    "model-key-of-another-source": (["model.name=resnet18"], "model.name: no such key"),
    "empty-pretrained-path": (["pretrained.path=''"], "pretrained.path is empty"),
    # issue 22: the decoded cache
    "cache-resolution-0": (
        lambda case_dir: cached_folder(case_dir, "dataset.cache_resolution=0"),
        "dataset.cache_resolution=0: must be >= 1",
    ),
    "cache-dir-is-a-file": (cache_dir_is_a_file, "/cache: cannot write a cache there"),
    "cache-damaged": (damaged_cache, "pixels.u8 holds 10 bytes, its index says"),
    "cache-unreadable-image": (unreadable_image_cached, "broken.jpg (UnidentifiedImageError)"),
    # issue 30: data and weights that are not what they claim
    "one-digit": (["dataset.classes=[5]"], "dataset.classes=[5]: one class; a classifier needs"),
    "one-class-folder": (one_class_folder, "holds one class folder (red); a classifier needs"),
    "zero-lr": (["optimizer.lr=0"], "optimizer.lr=0: every group's lr is a multiple of it"),
    "integer-weights": (integer_weights, "8 tensor(s) hold integers or booleans where the model"),
    "cache-float-image": (float_image_cached, "f.tif holds floating-point pixels (PIL mode F)"),
    # Adapters (issue 28): targets, rank, a model with nothing to adapt, adapter tensors of a
    # module without an adapter.
    "adapter-target-typo": (
        ["adapter=lora", "adapter.targets=[fc9]"],
        "adapter.targets='fc9' matches no module with weights (a typo?); closest module names",
    ),
    "adapter-target-not-wrappable": (
        ["adapter=lora", "model=resnet18", "pretrained=none", 'adapter.targets=["^bn1$"]'],
        "adapter.targets='^bn1$' matches 1 module(s) peft cannot adapt, e.g. bn1, a BatchNorm2d",
    ),
    "adapter-rank-0": (["adapter=lora", "adapter.r=0"], "adapter.r=0: must be >= 1"),
    "adapter-rank-negative": (["adapter=lora", "adapter.r=-4"], "adapter.r=-4: must be >= 1"),
    "adapter-nothing-to-wrap": (
        [
            "adapter=lora",
            "model._target_=torch.nn.Identity",
            "pretrained=none",
            "adapter.train_fully=[]",
        ],
        "adapter=lora: the model has no module peft can wrap",
    ),
    "adapter-group-without-adapter": (
        ["adapter=lora", "adapter.targets=[conv1]", "+param_groups.b={pattern: fc1.lora_B}"],
        "only the modules adapter.targets selects have adapter tensors",
    ),
}


def _where(overrides: list[str], case_run_dir, run_dir=None) -> list[str]:
    """The case's run (or sweep) dir, unless the case names one itself."""
    key = "hydra.sweep.dir" if "-m" in overrides else "hydra.run.dir"
    if any(o.startswith(f"{key}=") or (o.startswith("-") and o != "-m") for o in overrides):
        return []
    return [f"{key}={run_dir or case_run_dir}"]


def run_all_in_one_process(
    tmp_path, names: list[str], run_dir=None
) -> dict[str, subprocess.CompletedProcess]:
    """Each case in `tmp_path/<name>`, into `tmp_path/<name>/run` or `run_dir` when given."""
    cases = []
    for name in names:
        overrides, _ = CASES[name]
        case_dir = tmp_path / name
        case_dir.mkdir(parents=True)
        overrides = overrides(case_dir) if callable(overrides) else overrides
        cases.append([*overrides, *_where(overrides, case_dir / "run", run_dir)])
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    subprocess.run(
        [sys.executable, "-m", "tests.cli_in_process", "cases.json", "results.json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    return {
        name: subprocess.CompletedProcess(args, r["code"], r["stdout"], r["stderr"])
        for name, args, r in zip(names, cases, results, strict=True)
    }
