import pytest
import torch

from src import schedulers

SCHEDULES = {
    "constant": {},
    "step": {"step_size": 1, "gamma": 0.5},
    "cosine": {"min_lr_ratio": 0.1},
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_group_keeps_its_ratio_to_the_base_at_every_step(name):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    mults = [1.0, 10.0, 0.25]
    optimizer = torch.optim.SGD(
        [{"params": [p], "lr": 0.01 * m} for p, m in zip(params, mults, strict=True)], lr=0.01
    )
    scheduler = getattr(schedulers, name)(
        optimizer, steps_per_epoch=4, max_epochs=3, **SCHEDULES[name]
    )
    seen = set()
    for _ in range(12):
        lrs = [g["lr"] for g in optimizer.param_groups]
        for lr, mult in zip(lrs, mults, strict=True):
            assert lr == pytest.approx(lrs[0] * mult, rel=1e-12)
        seen.add(round(lrs[0], 12))
        optimizer.step()
        scheduler.step()
    assert (len(seen) == 1) == (name == "constant")


def test_step_decays_every_step_size_epochs():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedulers.step(optimizer, steps_per_epoch=2, max_epochs=6, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1])


def test_cosine_ends_at_its_floor_ratio():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = schedulers.cosine(optimizer, steps_per_epoch=5, max_epochs=2, min_lr_ratio=0.1)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
