"""Distributed training with torchrun and DDP, on CPU processes talking through Gloo."""

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from src.config import resolvers
from src.config.dataset_schema import DigitsConfig
from src.config.schema import TrainerConfig
from src.data import digits as data_module
from src.models.lenet import LeNet
from src.runner import Runner
from src.training import distributed
from src.training.checkpoints import MODEL, PROGRESS, load_checkpoint
from src.training.trainer import Trainer
from tests.conftest import ROOT, read_scalars, run_python

TINY = ["dataset.shots_per_class=8", "trainer.max_epochs=2", "scheduler=cosine"]


@pytest.mark.e2e
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(make_cfg, tmp_path):
    one = tmp_path / "one"
    Runner(make_cfg(*TINY, "dataset.batch_size=8"), one).run()
    # No hydra.run.dir: both ranks must name the same dir from `${launch_time:...}`.
    result = run_python(
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "src.run", *TINY, "dataset.batch_size=4"),
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    (two,) = (tmp_path / "outputs" / "runs").iterdir()

    expected, actual = (load_checkpoint(d / "checkpoints/last.pt") for d in (one, two))
    assert expected[MODEL].keys() == actual[MODEL].keys()
    for key, tensor in expected[MODEL].items():
        torch.testing.assert_close(actual[MODEL][key], tensor, rtol=1e-5, atol=1e-6)
    assert actual[PROGRESS]["global_step"] == expected[PROGRESS]["global_step"] == 10
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (one, two)]
    for key in ("train/loss", "val/loss", "val/acc"):
        assert abs(metrics[0][key] - metrics[1][key]) < 1e-5, key
    # Only rank 0 wrote TensorBoard, and printed: one event file, each epoch once.
    assert len(list(two.glob("events.out.tfevents.*"))) == 1
    assert [s for s, _ in read_scalars(two)["lr/default"]] == [0]  # steps 0..9, every 10th
    assert result.stdout.count("epoch 2/2") == 1
    # ... and wrote run.log and the launch record alone.
    assert (two / "run.log").read_text().count("epoch 2/2") == 1


def test_run_dirs_are_named_from_the_launch_time_the_entry_point_registers():
    run_dir = "runs/${launch_time:%Y-%m-%d_%H-%M-%S}"
    before = datetime.now().replace(microsecond=0)
    named = OmegaConf.create({"dir": run_dir}).dir  # one process: its own clock, as Hydra's now
    assert before <= datetime.strptime(named, "runs/%Y-%m-%d_%H-%M-%S") <= datetime.now()
    resolvers.register(launch_time=datetime(2001, 2, 3, 4, 5, 6))  # rank 0's, under torchrun
    try:
        assert OmegaConf.create({"dir": run_dir}).dir == "runs/2001-02-03_04-05-06"
    finally:
        resolvers.register()  # as `src.run` registers them on import


def _train_with_fc3_unfrozen_at_epoch_2(rank: int, world: int, rendezvous: str, out: str):
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    torch.manual_seed(0)
    options = DigitsConfig(
        _target_="src.data.digits.digits", classes=[5, 6, 7], batch_size=4, shots_per_class=8,
        val_fraction=0.2, image_size=32, test_fraction=0.0,
    )  # fmt: skip
    data = data_module.digits(options, seed=0)
    data = data.with_loaders(
        distributed.shard(data.train_loader, pad=True),
        distributed.shard(data.val_loader, pad=False),
    )
    model = LeNet(1, 3)
    initial_fc3 = model.fc3.weight.detach().clone()
    # Scheduled unfreezing as param_groups.optimizer_groups marks it: fc3 trains from epoch 1.
    body = [p for name, p in model.named_parameters() if not name.startswith("fc3.")]
    optimizer = torch.optim.SGD(
        [
            {"params": body, "name": "default"},
            {"params": list(model.fc3.parameters()), "name": "fc3", "trains_from_epoch": 1},
        ],
        lr=0.05,
    )
    trainer = Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        data=data,
        device=torch.device("cpu"),
        logger=distributed.Silent(),
        checkpoint_path=Path(out) / "last.pt",
        config={},
        options=TrainerConfig(max_epochs=1),
    )
    trainer.fit()
    frozen_fc3 = model.fc3.weight.detach().clone()
    trainer.options.max_epochs = 2
    trainer.fit()
    torch.save(
        {"initial": initial_fc3, "frozen": frozen_fc3, "state": model.state_dict()},
        f"{out}/rank{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.mark.e2e
def test_a_group_unfrozen_mid_run_trains_in_sync_on_every_rank(tmp_path):
    mp.spawn(
        _train_with_fc3_unfrozen_at_epoch_2,
        args=(2, str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=2,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank in ranks:
        assert torch.equal(rank["frozen"], rank["initial"])  # frozen: untouched in epoch 1
        assert not torch.equal(rank["state"]["fc3.weight"], rank["frozen"])  # then trained
    # Each rank saw other samples: only gradients averaged by DDP keep the weights equal.
    for key, tensor in ranks[0]["state"].items():
        assert torch.equal(tensor, ranks[1]["state"][key]), key
