"""What a run dir already holds decides what a run may do: a trained run is never overwritten;
`resume=true` continues its checkpoint, with the config it was trained with."""

import shlex
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src import stopping
from src.errors import GroupwiseError, Interrupted, WriteFailed
from src.migration import as_today
from src.training.checkpoints import CONFIG, PROGRESS, load_checkpoint_or_explain
from src.training.state import TrainingState

# A resumed run must train the same network with the same groups on the same data as the one
# it continues; the optimizer too, as its restored state would silently override a change.
# The adapter too: its tensors are in the checkpoint, and other targets or another rank would
# not fit them.
RESUME_MUST_MATCH = (
    "seed",
    "model",
    "dataset",
    "optimizer",
    "param_groups",
    "weight_decay_1d",
    "adapter",
)


# What a run writes once it trains: any of them makes a dir a finished or interrupted run.
TRAINING_RECORDS = ("checkpoints", "metrics.json", "export")


def check_run_dir(run_dir: Path, checkpoint_path: Path, resume: bool, dry_run: bool) -> bool:
    """Whether `run_dir` holds a trained run (any record of training: a checkpoint,
    metrics.json, an export); refused when it does and this is neither a resume that can
    continue it (from `checkpoint_path`) nor a dry run (which writes nothing into it), or when
    a resume has nothing to continue."""
    trained = any(_holds(run_dir / record) for record in TRAINING_RECORDS)
    can_resume = checkpoint_path.exists()
    if resume and not can_resume:
        raise GroupwiseError(
            f"resume=true: {run_dir} holds a trained run but no {checkpoint_path.name} to "
            "continue from; start a new run in another hydra.run.dir (nothing was written)"
            if trained
            else f"resume=true: no checkpoint at {checkpoint_path}; point hydra.run.dir at the "
            "run to continue, or drop resume=true to start anew"
        )
    if trained and not resume and not dry_run:
        continue_it = "pass resume=true to continue it, or " if can_resume else ""
        raise GroupwiseError(
            f"hydra.run.dir={run_dir} already holds a trained run; {continue_it}choose another "
            "hydra.run.dir (nothing was overwritten)"
        )
    return trained


def busy(run_dir: Path, resume: bool) -> str:
    """The refusal of a run into `run_dir` while another process writes it (its `{holder}`)."""
    if resume:
        return (
            f"resume=true: the run in {run_dir} is still running ({{holder}}); stop it first "
            "(Ctrl-C, or kill that pid: it keeps its checkpoint), then resume"
        )
    return (
        f"hydra.run.dir={run_dir} is being written by {{holder}}; choose another "
        "hydra.run.dir, or wait until it has ended"
    )


def _holds(path: Path) -> bool:
    """A file, or a directory with anything in it."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def resume_state(checkpoint_path: Path, cfg: DictConfig) -> dict:
    """The checkpoint to continue from, refused when the config differs where it must not."""
    state = load_checkpoint_or_explain(
        checkpoint_path,
        "resume=true",
        "start a new run dir (atomic writes make this rare: was the file copied or edited?)",
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    # Both read as today's: a run saved by an older groupwise differs only where it must.
    differences = [
        f"{key}: {old!r} -> {new!r}"
        for part in RESUME_MUST_MATCH
        for key, old, new in _differences(
            # A section a run saved before it existed (adapter) is its schema's defaults.
            as_today(state[CONFIG].get(part, {}), _schema_of(cfg, part)),
            as_today(config.get(part), _schema_of(cfg, part)),
            part,
        )
    ]
    if differences:
        raise GroupwiseError(
            f"resume=true: the config differs from the run being resumed "
            f"({checkpoint_path}) in {'; '.join(differences)}; resume with the values "
            "it was started with, or start a new run in another hydra.run.dir"
        )
    trained, max_epochs = state[PROGRESS]["epoch"], cfg.trainer.max_epochs
    if trained >= max_epochs:
        raise GroupwiseError(
            f"resume=true: the run has trained {trained} epochs already, and "
            f"trainer.max_epochs={max_epochs} leaves nothing to train; pass "
            f"trainer.max_epochs={trained + 1} or more to train on (nothing was written)"
        )
    return state


def interrupted(
    stop: KeyboardInterrupt,
    state: TrainingState,
    saved: TrainingState | None,
    checkpoint_path: Path,
    run_dir: Path,
    command: str | None,
) -> Interrupted:
    """Ctrl-C or SIGTERM during training, in one line: where training stood, the checkpoint
    resume=true would continue from (or that there is none), and the command that does it."""
    where = (
        f"interrupted by {stopping.name(stop)} in epoch {state.epoch + 1}, at step "
        f"{state.global_step}"
    )
    command = command or "python -m src.run"
    if saved is None:
        return Interrupted(
            f"{where}; no checkpoint had been written yet, so there is nothing to resume: "
            f"rerun {command} to start again ({run_dir} keeps what the run made)",
            code=stopping.exit_code(stop),
        )
    return Interrupted(
        f"{where}; resume=true continues from {_continued(checkpoint_path, saved)}: "
        f"{resume_command(command, run_dir)}",
        code=stopping.exit_code(stop),
    )


def write_failed(
    err: OSError,
    saved: TrainingState | None,
    checkpoint_path: Path,
    run_dir: Path,
    command: str | None,
) -> WriteFailed:
    """A write of the run that failed (disk full, read-only), in one line: the path, what the
    system said (a checkpoint's: with its size), and how to continue once there is room."""
    problem = f"could not write {err.filename or run_dir} ({err.strerror})"
    if saved is None:
        return WriteFailed(
            f"{problem}; no checkpoint had been written, so there is nothing to resume: free "
            f"space, then rerun {command or 'python -m src.run'} in a new hydra.run.dir"
        )
    return WriteFailed(
        f"{problem}; {_continued(checkpoint_path, saved)} is kept: free space, then "
        f"{resume_command(command or 'python -m src.run', run_dir)}"
    )


def write_failed_after_training(
    err: OSError, saved: TrainingState, checkpoint_path: Path, run_dir: Path, command: str | None
) -> WriteFailed:
    """A write once training has finished (the export, metrics.json, TensorBoard's event file
    at close) that failed, in one line: the path, what the system said, the checkpoints kept,
    and the resume that trains one epoch more and writes the rest (a resume of a run trained
    to its trainer.max_epochs is refused)."""
    kept = ", ".join(sorted(p.name for p in checkpoint_path.parent.glob("*.pt")))
    more = resume_command(
        command or "python -m src.run", run_dir, f"trainer.max_epochs={saved.epoch + 1}"
    )
    return WriteFailed(
        f"could not write {err.filename or run_dir} ({err.strerror}) after training finished; "
        f"the checkpoints are kept ({checkpoint_path.parent}: {kept}; epoch {saved.epoch}, "
        f"step {saved.global_step}): free space, then {more} trains one epoch more and writes "
        "the rest"
    )


def _continued(checkpoint_path: Path, saved: TrainingState) -> str:
    inside = f" and {saved.batches_in_epoch} batches of epoch {saved.epoch + 1}"
    return (
        f"{checkpoint_path} (epoch {saved.epoch} done"
        f"{inside if saved.batches_in_epoch else ''}, step {saved.global_step})"
    )


def resume_command(command: str, run_dir: Path, *changed: str) -> str:
    """`command` (the one that started the run) continuing it in `run_dir`, with the overrides
    `changed` (`trainer.max_epochs=4`) in place of its own for those keys."""
    replaced = ("hydra.run.dir=", "resume=", *(f"{o.partition('=')[0]}=" for o in changed))
    kept = [a for a in shlex.split(command) if not a.startswith(replaced)]
    return shlex.join([*kept, *changed, f"hydra.run.dir={run_dir}", "resume=true"])


def _schema_of(cfg: DictConfig, part: str) -> type | None:
    section = cfg.get(part)
    return OmegaConf.get_type(section) if isinstance(section, DictConfig) else None


class _Absent:
    """The value of a key that one of two configs lacks."""

    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _differences(old, new, key: str) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            difference
            for k in [*old, *(k for k in new if k not in old)]
            for difference in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{key}.{k}")
        ]
    return [] if old == new else [(key, old, new)]
