import builtins

import pytest
import torch
from torch import nn

from src.errors import GroupwiseError
from src.models import LeNet
from src.pretrained import filter_state_dict, load_pretrained, read_state_dict


class Small(nn.Module):
    def __init__(self, classes: int = 3):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, classes)


def save(obj, path):
    torch.save(obj, path)
    return path


def test_same_key_and_shape_loads_other_shape_is_skipped_with_both_shapes(tmp_path):
    source = Small(classes=5)
    source.body.weight.data.fill_(0.5)
    checkpoint = {**source.state_dict(), "extra.weight": torch.ones(2)}
    del checkpoint["norm.bias"]
    target = Small(classes=3)
    report = load_pretrained(target, save(checkpoint, tmp_path / "w.pt"))

    assert torch.equal(target.body.weight, torch.full((8, 4), 0.5))
    assert "body.weight" in report.loaded and "norm.running_mean" in report.loaded
    assert report.skipped_shape == {
        "head.weight": {"checkpoint": [5, 8], "model": [3, 8]},
        "head.bias": {"checkpoint": [5], "model": [3]},
    }
    assert report.unexpected == ["extra.weight"]
    assert report.missing == ["norm.bias"]
    assert report.loaded_elements == 4 * 8 + 8 + 8  # body and norm.weight: parameters only
    assert report.to_json()["loaded_share"] == pytest.approx(48 / (32 + 8 + 16 + 24 + 3))


def test_excluded_keys_are_never_loaded(tmp_path):
    source, target = LeNet(1, 5), LeNet(1, 5)
    before = target.fc3.weight.clone()
    report = load_pretrained(target, save(source.state_dict(), tmp_path / "w.pt"), [r"^fc3\."])
    assert report.excluded == ["fc3.weight", "fc3.bias"]
    assert torch.equal(target.fc3.weight, before)
    assert torch.equal(target.fc1.weight, source.fc1.weight)


def test_weights_inside_a_training_checkpoint_are_found(tmp_path):
    source = Small()
    checkpoint = {"model": source.state_dict(), "optimizer": {"state": {}}, "epoch": 3}
    assert (
        read_state_dict(save(checkpoint, tmp_path / "last.pt")).keys() == source.state_dict().keys()
    )


def test_a_checkpoint_sharing_no_tensor_is_an_error_showing_both_sides(tmp_path):
    path = save({f"module.{k}": v for k, v in Small().state_dict().items()}, tmp_path / "w.pt")
    with pytest.raises(
        GroupwiseError, match=r"shares no tensor .*module\.body\.bias.*body\.weight"
    ):
        load_pretrained(Small(), path)


def test_filter_keeps_only_matching_entries():
    keep, _ = filter_state_dict({"body.weight": torch.zeros(8, 4), "x": torch.zeros(1)}, Small())
    assert list(keep) == ["body.weight"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
        (
            lambda p: (p.write_bytes(b"not a checkpoint at all"), p)[1],
            "not a readable PyTorch checkpoint",
        ),
        (
            lambda p: (p.write_bytes(_truncated_checkpoint()), p)[1],
            "not a readable PyTorch checkpoint",
        ),
        (lambda p: save([1, 2, 3], p), "holds no tensors by name"),
    ],
)
def test_unreadable_checkpoints_are_clear_errors(tmp_path, make, expected):
    path = make(tmp_path / "w.pt")
    with pytest.raises(GroupwiseError, match=expected) as err:
        read_state_dict(path)
    assert f"pretrained.path={path}" in str(err.value)


def _truncated_checkpoint() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(Small().state_dict(), buffer)
    return buffer.getvalue()[:200]


class CreatesFile:
    """A pickle payload that creates a file when unpickled: what a malicious checkpoint does."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return builtins.open, (self.target, "w")


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = save(
        {"fc1.weight": torch.zeros(1), "payload": CreatesFile(marker)}, tmp_path / "evil.pt"
    )
    with pytest.raises(
        GroupwiseError, match=r"refused: the checkpoint's pickle asks to build (io|builtins)\.open"
    ):
        load_pretrained(LeNet(1, 5), path)
    assert not marker.exists()

    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()
