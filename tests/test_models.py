import pytest
import torch

from src.errors import GroupwiseError
from src.models.lenet import LeNet
from src.models.torchvision_models import TorchvisionSource


def test_lenet_has_the_classic_parameter_names_and_shapes():
    model = LeNet(in_channels=1, num_classes=5)
    shapes = {n: list(p.shape) for n, p in model.named_parameters()}
    assert shapes == {
        "conv1.weight": [6, 1, 5, 5], "conv1.bias": [6],
        "conv2.weight": [16, 6, 5, 5], "conv2.bias": [16],
        "fc1.weight": [120, 400], "fc1.bias": [120],
        "fc2.weight": [84, 120], "fc2.bias": [84],
        "fc3.weight": [5, 84], "fc3.bias": [5],
    }  # fmt: skip
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_models_take_the_runs_classes_and_channels(name):
    model = TorchvisionSource(name).build(in_channels=1, num_classes=7)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


def test_an_unknown_torchvision_model_is_a_clear_error():
    with pytest.raises(GroupwiseError, match=r"model\.name=resnet19: not a torchvision"):
        TorchvisionSource("resnet19")
