import pytest
import torch

from src.config.arguments import build
from src.errors import GroupwiseError
from src.optim import schedulers
from tests.conftest import ROOT

STEPS_PER_EPOCH, MAX_EPOCHS = 4, 5
SCHEDULER_CONFIGS = sorted(p.stem for p in (ROOT / "conf" / "scheduler").glob("*.yaml"))
MULTS = {"body": 1.0, "head": 10.0, "stem": 0.25}


def three_groups(trains_from_epoch: dict | None = None) -> torch.optim.Optimizer:
    trains_from_epoch = trains_from_epoch or {}
    return torch.optim.SGD(
        [
            {
                "params": [torch.nn.Parameter(torch.zeros(1))],
                "name": name,
                "lr": 0.01 * mult,
                "lr_mult": mult,
                "trains_from_epoch": trains_from_epoch.get(name, 0),
            }
            for name, mult in MULTS.items()
        ],
        lr=0.01,
    )


def scheduler_from_config(make_cfg, name, optimizer):
    # steps inside the run, so every shape moves within MAX_EPOCHS
    overrides = {"multistep": ["scheduler.milestones=[1,3]"], "step": ["scheduler.step_size=2"]}
    cfg = make_cfg(
        f"scheduler={name}", f"trainer.max_epochs={MAX_EPOCHS}", *overrides.get(name, [])
    )
    return build(
        cfg.scheduler,
        "scheduler",
        optimizer=optimizer,
        steps_per_epoch=STEPS_PER_EPOCH,
        max_epochs=MAX_EPOCHS,
    )


def lrs_per_step(optimizer, scheduler) -> list[dict[str, float]]:
    seen = []
    for _ in range(STEPS_PER_EPOCH * MAX_EPOCHS):
        seen.append({g["name"]: g["lr"] for g in optimizer.param_groups})
        optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize("name", SCHEDULER_CONFIGS)
def test_every_group_keeps_its_ratio_to_the_base_at_every_step(make_cfg, name):
    optimizer = three_groups()
    seen = lrs_per_step(optimizer, scheduler_from_config(make_cfg, name, optimizer))
    for lrs in seen:
        factor = lrs["body"] / 0.01  # what the schedule does to the base lr at this step
        for group, mult in MULTS.items():
            assert lrs[group] / (0.01 * mult) == pytest.approx(factor, rel=1e-12), (group, lrs)
    distinct = {round(lrs["body"], 12) for lrs in seen}
    assert (len(distinct) == 1) == (name == "none")


@pytest.mark.parametrize("name", SCHEDULER_CONFIGS)
def test_a_group_unfrozen_later_is_at_0_until_then_and_on_the_schedule_after(make_cfg, name):
    optimizer = three_groups({"stem": 2, "head": None})
    seen = lrs_per_step(optimizer, scheduler_from_config(make_cfg, name, optimizer))
    for step, lrs in enumerate(seen):
        assert lrs["head"] == 0.0
        if step < 2 * STEPS_PER_EPOCH:
            assert lrs["stem"] == 0.0
        else:
            assert lrs["stem"] == pytest.approx(0.25 * lrs["body"], rel=1e-12)
            assert lrs["stem"] > 0


def shape(schedule, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule(optimizer, **kwargs)
    factors = []
    for _ in range(kwargs["steps_per_epoch"] * kwargs["max_epochs"] + 1):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return factors


def test_step_decays_every_step_size_epochs():
    factors = shape(schedulers.step, steps_per_epoch=2, max_epochs=4, step_size=2, gamma=0.1)
    assert factors[:8] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1])


def test_multistep_decays_at_each_milestone_epoch():
    factors = shape(
        schedulers.multistep, steps_per_epoch=2, max_epochs=4, milestones=[1, 3], gamma=0.5
    )
    assert factors[:8] == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_cosine_ends_at_its_floor_ratio():
    factors = shape(schedulers.cosine, steps_per_epoch=5, max_epochs=2, min_lr_ratio=0.1)
    assert (
        factors[0] == 1 and factors[5] == pytest.approx(0.55) and factors[-1] == pytest.approx(0.1)
    )


def test_warmup_cosine_rises_linearly_then_follows_the_cosine():
    factors = shape(
        schedulers.warmup_cosine, steps_per_epoch=4, max_epochs=3, warmup_epochs=1, min_lr_ratio=0
    )
    assert factors[:5] == pytest.approx([0.25, 0.5, 0.75, 1, 1])
    assert factors[8] == pytest.approx(0.5) and factors[-1] == pytest.approx(0, abs=1e-12)


def test_onecycle_rises_to_each_groups_lr_then_falls_far_below_it():
    factors = shape(
        schedulers.onecycle,
        steps_per_epoch=5,
        max_epochs=2,
        pct_start=0.3,
        div_factor=25,
        final_div_factor=100,
    )
    assert factors[0] == pytest.approx(1 / 25) and max(factors) == factors[3] == 1
    assert factors[-1] == pytest.approx(1 / 2500)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("scheduler.milestones=[3,2]", "scheduler.milestones=[3, 2]: must be increasing epochs"),
        ("scheduler.warmup_epochs=20", "scheduler.warmup_epochs=20: must lie in [0, trainer"),
    ],
)
def test_bad_scheduler_values_are_errors_naming_the_key(make_cfg, override, expected):
    name = override.split(".")[1].split("=")[0]
    scheduler = {
        "milestones": "multistep",
        "warmup_epochs": "warmup_cosine",
    }[name]
    cfg = make_cfg(f"scheduler={scheduler}", override, "trainer.max_epochs=20")
    with pytest.raises(GroupwiseError) as err:
        build(
            cfg.scheduler, "scheduler", optimizer=three_groups(), steps_per_epoch=4, max_epochs=20
        )
    assert expected in str(err.value)
