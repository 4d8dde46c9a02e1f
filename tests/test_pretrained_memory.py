"""The lean load: the model built on the meta device takes the memory-mapped checkpoint tensors
themselves, initialises only what the checkpoint lacks, and trains like the ordinary path."""

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from src.models.lenet import LeNet
from src.models.torchvision_models import TorchvisionSource
from src.pretrained.load import build_with_pretrained, load_pretrained
from tests.pretrained_sources import source_roles


def save(obj, path):
    torch.save(obj, path)
    return path


def tensors(model: nn.Module):
    return itertools.chain(model.named_parameters(), model.named_buffers())


def mapped_from(path: Path) -> list[tuple[int, int]]:
    """Address ranges where this process maps `path`."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(str(path)):
            start, end = line.split()[0].split("-")
            ranges.append((int(start, 16), int(end, 16)))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc")
def test_loaded_weights_are_the_memory_mapped_checkpoint_not_copies(tmp_path):
    path = save(LeNet(1, 5).state_dict(), tmp_path / "w.pt")
    model, report = build_with_pretrained(
        lambda: LeNet(1, 5), path, source_roles, exclude=[r"^fc3\."]
    )
    assert report.built.startswith("built on the meta device")
    ranges = mapped_from(path)
    assert ranges, "the checkpoint is not memory-mapped"

    def in_file(t):
        return any(start <= t.data_ptr() < end for start, end in ranges)

    assert all(in_file(p) for name, p in model.named_parameters() if not name.startswith("fc3"))
    assert not in_file(model.fc3.weight)  # the new head: allocated and initialised here


def test_only_what_the_checkpoint_lacks_is_initialised_by_its_layer(tmp_path):
    source = TorchvisionSource("resnet18").build(3, 10)
    state = source.state_dict()
    del state["bn1.bias"]  # the rest of bn1 comes from the checkpoint
    resnet = TorchvisionSource("resnet18")
    model, report = build_with_pretrained(
        lambda: resnet.build(3, 5), save(state, tmp_path / "w.pt"), resnet.roles
    )
    assert report.built == "built on the meta device: took the checkpoint's tensors, initialised 3"
    assert not [name for name, t in tensors(model) if t.is_meta]
    assert torch.equal(model.bn1.weight, source.bn1.weight)
    assert torch.equal(model.bn1.running_var, source.bn1.running_var)
    assert torch.equal(model.bn1.bias, torch.zeros(64))  # BatchNorm's own init
    bound = 1 / 512**0.5  # nn.Linear's own init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert model.fc.weight.shape == (5, 512) and model.fc.weight.abs().max() <= bound
    assert model.fc.weight.std() > bound / 4
    assert all(p.requires_grad for p in model.parameters())


def test_training_afterwards_matches_the_ordinary_path(tmp_path):
    torch.manual_seed(0)
    path = save(LeNet(1, 10).state_dict(), tmp_path / "w.pt")
    lean, report = build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    assert report.built.startswith("built on the meta device")
    ordinary = LeNet(1, 5)
    load_pretrained(ordinary, path, source_roles)
    # The new head is the one tensor the two paths initialise differently: start both alike.
    ordinary.fc3.load_state_dict(lean.fc3.state_dict())

    images, labels = torch.rand(6, 8, 1, 32, 32), torch.randint(0, 5, (6, 8))
    losses = {}
    for name, model in (("lean", lean), ("ordinary", ordinary)):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        losses[name] = []
        for x, y in zip(images, labels, strict=True):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    assert losses["lean"] == losses["ordinary"]
    for (name, a), (_, b) in zip(tensors(lean), tensors(ordinary), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(lean.conv1.weight, torch.load(path)["conv1.weight"])  # it trained


def test_the_checkpoint_file_is_never_written(tmp_path):
    path = save(LeNet(1, 5).state_dict(), tmp_path / "w.pt")
    before = path.read_bytes()
    model, _ = build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # copy-on-write: the mapping is private
    assert path.read_bytes() == before


def test_a_checkpoint_of_another_dtype_is_cast_to_the_models(tmp_path):
    source = LeNet(1, 5)
    path = save(source.half().state_dict(), tmp_path / "w.pt")
    model, _ = build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert torch.equal(model.fc1.weight, source.fc1.weight.float())


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.out = nn.Linear(4, 4)
        self.out.weight = self.embed.weight


class WithNonPersistentBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.register_buffer("scale", torch.full((4,), 2.0), persistent=False)


class OwnParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.token = nn.Parameter(torch.ones(4))


class ComputesInConstructor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.depth = int(torch.linspace(0, 3, 4)[-1].item())


@pytest.mark.parametrize(
    ("make", "drop", "reason"),
    [
        (Tied, [], "shares (ties) parameters"),
        (WithNonPersistentBuffer, [], "has non-persistent buffers ['scale']"),
        (OwnParameter, ["token"], "token, not in the checkpoint, belongs to a OwnParameter"),
        (ComputesInConstructor, [], "its constructor fails on the meta device (Tensor.item()"),
    ],
)
def test_a_model_the_meta_device_cannot_rebuild_faithfully_is_built_normally(
    tmp_path, make, drop, reason
):
    source = make()
    state = {k: v for k, v in source.state_dict().items() if k not in drop}
    model, report = build_with_pretrained(make, save(state, tmp_path / "w.pt"), source_roles)
    assert report.built.startswith("built normally, then loaded by copy: ")
    assert reason in report.built
    assert not [name for name, t in tensors(model) if t.is_meta]
    assert_loaded = [k for k in state if k in model.state_dict()]
    for key in assert_loaded:
        assert torch.equal(model.state_dict()[key], state[key]), key
    if make is Tied:
        assert model.out.weight is model.embed.weight
    if make is WithNonPersistentBuffer:
        assert torch.equal(model.scale, torch.full((4,), 2.0))


def test_the_same_seed_initialises_the_new_layers_alike(tmp_path):
    state = LeNet(1, 10).state_dict()
    for key in ("conv2.bias", "fc1.weight", "fc2.bias"):
        del state[key]
    path = save(state, tmp_path / "w.pt")
    built = []
    for _ in range(2):
        torch.manual_seed(0)
        built.append(build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)[0].state_dict())
    for key, tensor in built[0].items():
        assert torch.equal(tensor, built[1][key]), key


class TwoAlike(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)
        self.norm = nn.BatchNorm1d(4)
        self.norm2 = nn.BatchNorm1d(4)


def test_keys_saved_as_one_tensor_become_independent_parameters(tmp_path):
    state = TwoAlike().state_dict()
    for name in ("weight", "bias"):
        state[f"second.{name}"] = state[f"first.{name}"]  # one tensor under two keys
    state["norm2.running_mean"] = state["norm.running_mean"]
    path = save(state, tmp_path / "w.pt")
    loaded = torch.load(path, mmap=True)
    assert loaded["second.weight"].data_ptr() == loaded["first.weight"].data_ptr()  # as saved
    model, report = build_with_pretrained(TwoAlike, path, source_roles)
    assert report.copied == {
        "second.weight": "shared its storage with first.weight",
        "second.bias": "shared its storage with first.bias",
        "norm2.running_mean": "shared its storage with norm.running_mean",
    }
    assert torch.equal(model.second.weight, model.first.weight)  # the values, loaded
    storages = [t.untyped_storage().data_ptr() for _, t in tensors(model) if t.numel()]
    assert len(storages) == len(set(storages))
    with torch.no_grad():
        model.first.weight.add_(1.0)
    assert not torch.equal(model.second.weight, model.first.weight)


def test_views_into_one_buffer_are_copied_and_a_saved_model_is_its_own_size(tmp_path):
    source = LeNet(1, 5).state_dict()
    # One flat buffer twice the model's size (live and EMA weights, as flat-parameter
    # trainers keep them); every tensor a view into it.
    flat = torch.cat([t.flatten() for t in source.values()] * 2)
    views, offset = {}, 0
    for key, tensor in source.items():
        views[key] = flat[offset : offset + tensor.numel()].view_as(tensor)
        offset += tensor.numel()
    path = save(views, tmp_path / "w.pt")
    model, report = build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    assert set(report.copied) == set(source)
    assert all(
        why == f"a view into a {flat.numel() * 4:,}-byte buffer" for why in report.copied.values()
    )
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, source[key]), key
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    saved = save(model.state_dict(), tmp_path / "saved.pt").stat().st_size
    model_bytes = sum(t.numel() * t.element_size() for t in source.values())
    assert saved < 1.05 * model_bytes


def test_an_ordinary_checkpoint_is_not_copied(tmp_path):
    path = save(LeNet(1, 5).state_dict(), tmp_path / "w.pt")
    _, report = build_with_pretrained(lambda: LeNet(1, 5), path, source_roles)
    assert report.copied == {}
