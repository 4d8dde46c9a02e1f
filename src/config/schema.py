"""The typed config schema: every fixed option's type, default, range and help, declared once.

Each dataclass is registered in Hydra's ConfigStore under `schema/<name>`, and the matching
YAML files start from it (`defaults: [/schema/trainer@_here_, _self_]`), so Hydra checks
types while it composes the config: `trainer.max_epochs=true` or `dataset.batch_size=abc`
never reaches the code. Ranges and choices are read from each field's metadata by
`src.config.checks`, which reports every problem at once.

Sections whose keys are a constructor's arguments (`model`, `optimizer`) stay open: they are
checked against the signature of their `_target_` instead.
"""

from dataclasses import MISSING, dataclass, fields
from typing import Any

from hydra.core.config_store import ConfigStore

from src.config.command_schema import CacheConfig, EvaluateConfig, PredictConfig, SoupConfig
from src.config.dataset_schema import (
    DigitsConfig,
    ImageFolderConfig,
    TorchvisionDatasetConfig,
)
from src.config.option import option

# What a best checkpoint can follow, and which way is better.
MONITORED = {
    "val/acc": "max",
    "val/loss": "min",
    "train/loss": "min",
    # The weight EMA's (trainer.ema_decay): best.pt, the export, evaluation and prediction
    # then use the EMA's weights.
    "val_ema/acc": "max",
    "val_ema/loss": "min",
}
# trainer.precision: float32, bfloat16 autocast, float16 autocast with gradient scaling.
PRECISIONS = ("32", "bf16", "16")


@dataclass
class RunConfig:
    """The top level of `conf/config.yaml`; each config group has its own schema below."""

    seed: int = option(
        0, "seeds torch, Python's random, the data split and the data order", ge=0, le=2**63 - 1
    )
    dry_run: bool = option(False, "build everything, print the tables, train nothing")
    resume: bool = option(False, "continue the run in hydra.run.dir from checkpoints/last.pt")
    weight_decay_1d: bool = option(False, "also decay biases, norm weights and other 1-D tensors")
    model: Any = None
    dataset: Any = None
    optimizer: Any = None
    scheduler: Any = None
    param_groups: Any = None
    pretrained: Any = None
    trainer: Any = None
    adapter: Any = None


@dataclass
class TrainerConfig:
    max_epochs: int = option(20, "epochs to train in all (a resumed run counts those done)", ge=1)
    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int | None = option(
        None,
        "torch's CPU threads; null: the CPUs this process may use (affinity, cgroup quota), "
        "or OMP_NUM_THREADS when set",
        ge=1,
    )
    log_every_n_steps: int = option(10, "log lr/<group> and train/loss every N steps", ge=1)
    precision: str = option(
        "32", "32, bf16 (autocast) or 16 (autocast + scaling)", choices=PRECISIONS
    )
    channels_last: bool = option(False, "NHWC memory layout for conv nets")
    compile: bool = option(False, "torch.compile the model")
    accumulate_grad_batches: int = option(1, "one optimizer step per N batches", ge=1)
    label_smoothing: float = option(
        0.0,
        "training targets' share spread evenly over all classes (0.1 in DeiT); 0: off",
        ge=0,
        lt=1,
    )
    ema_decay: float | None = option(
        None,
        "keep an EMA of the weights with this decay (0.9998 in DeiT), scored as val_ema/*; "
        "null: none",
        ge=0,
        le=1,
    )
    ema_warmup: bool = option(True, "the EMA's decay grows from 0 to ema_decay (timm's warmup)")
    grad_clip: float | None = option(None, "max total gradient norm; null: no clipping", gt=0)
    monitor: str | None = option(
        "val/acc", "the metric checkpoints/best.pt follows; null: none", choices=tuple(MONITORED)
    )
    checkpoint_every_n_steps: int | None = option(
        500, "also checkpoint mid-epoch every N steps; null: epoch ends only", ge=1
    )


@dataclass
class PretrainedConfig:
    path: str | None = option(None, "a checkpoint file, or a torchvision weights name")
    use_ema: bool = option(False, "the EMA weights of a training checkpoint")
    prefix: str | None = option(None, "take the sub-tree under this key prefix only")
    rename: list[list[str]] = option([], "[[regex, replacement], ...] applied in order")
    exclude: list[str] = option([], "roles (head, stem, ...) or regexes on the keys never to load")
    adapt_input_channels: bool = option(False, "fit an RGB first conv to the input channels")
    resample_pos_embed: bool = option(
        True,
        "a ViT's position embeddings resampled (bicubic) to the run's patch grid; false: skipped",
    )
    strict: bool = option(False, "any unexpected, missing or mis-shaped tensor is an error")


@dataclass
class AdapterConfig:
    kind: str = option(
        "none",
        "none: every parameter trains; lora, dora: low-rank adapters (peft)",
        choices=("none", "lora", "dora"),
    )
    targets: list[str] | None = option(
        None,
        "regexes (re.search) on module names to adapt; null: every Linear and Conv but the "
        "modules trained fully",
    )
    r: int = option(8, "the adapters' rank", ge=1)
    alpha: float = option(16.0, "the update is alpha / r x B A (peft's lora_alpha)", gt=0)
    dropout: float = option(0.0, "dropout on the adapters' input", ge=0, lt=1)
    train_fully: list[str] = option(
        ["head"], "modules trained in full beside the adapters: roles (head, ...) or regexes"
    )
    path: str | None = option(
        None, "a peft adapter dir (adapter_config.json, adapter_model.safetensors) to start from"
    )


@dataclass
class StepConfig:
    _target_: str = "src.optim.schedulers.step"
    step_size: int = option(50, "epochs between decays", ge=1)
    gamma: float = option(0.1, "the factor at each decay", gt=0)


@dataclass
class MultiStepConfig:
    _target_: str = "src.optim.schedulers.multistep"
    milestones: list[int] = option([10, 15], "epochs at which to decay", ge=1, unique=True)
    gamma: float = option(0.1, "the factor at each milestone", gt=0)


@dataclass
class CosineConfig:
    _target_: str = "src.optim.schedulers.cosine"
    min_lr_ratio: float = option(0.0, "the floor, as a share of each group's lr", ge=0, le=1)


@dataclass
class WarmupCosineConfig(CosineConfig):
    _target_: str = "src.optim.schedulers.warmup_cosine"
    warmup_epochs: float = option(2.0, "linear warmup length (may be fractional)", ge=0)


@dataclass
class OneCycleConfig:
    _target_: str = "src.optim.schedulers.onecycle"
    pct_start: float = option(0.3, "share of the run spent rising", gt=0, lt=1)
    div_factor: float = option(25.0, "start at lr / div_factor", ge=1)
    final_div_factor: float = option(1e4, "end at a further 1 / final_div_factor", ge=1)


@dataclass
class ConstantConfig:
    _target_: str = "src.optim.schedulers.constant"


def defaults(node: type) -> dict:
    """Each option's default (a factory's value made); required and private ones left out."""
    return {
        f.name: f.default if f.default_factory is MISSING else f.default_factory()
        for f in fields(node)
        if not f.name.startswith("_") and f.default != "???"
    }


SCHEMAS = {
    "run": RunConfig,
    "trainer": TrainerConfig,
    "pretrained": PretrainedConfig,
    "adapter": AdapterConfig,
    "digits": DigitsConfig,
    "image_folder": ImageFolderConfig,
    "torchvision_dataset": TorchvisionDatasetConfig,
    "step": StepConfig,
    "multistep": MultiStepConfig,
    "cosine": CosineConfig,
    "warmup_cosine": WarmupCosineConfig,
    "onecycle": OneCycleConfig,
    "constant": ConstantConfig,
    "evaluate": EvaluateConfig,
    "predict": PredictConfig,
    "soup": SoupConfig,
    "cache": CacheConfig,
}


def register() -> None:
    """Make the schemas available to the config files as `/schema/<name>`."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(group="schema", name=name, node=node)
