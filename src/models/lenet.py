"""The seed tutorial's LeNet, and its model source."""

from torch import nn

from src.models.contract import ParameterRoles, Preprocess, roles_from_patterns
from src.models.source import ModelSource

INPUT_SIZE = 32  # two 5x5 convs and 2x2 pools leave fc1's 5x5 maps


class LeNet(nn.Module):
    """The seed's `Net`: two conv/pool stages and three linear layers, for 32x32 inputs.

    Parameter names (`conv1.weight` ... `fc3.bias`) are the seed's, so its param-group
    recipe (`fc3` at 10x) and its checkpoints apply unchanged. Initialisation is PyTorch's
    default, not the seed's N(0, 0.01) linears: three such layers in a row shrink the signal
    so much that SGD stalls (measured on digits 0-4: val acc 0.20 after 8 epochs at lr 0.05,
    against 0.98 with the default init at lr 0.01).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = x.flatten(1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class LeNetSource(ModelSource):
    """`model=lenet`: the seed's LeNet, for the run's input channels and classes."""

    library = "lenet"
    name = "LeNet"  # the README's rebuild snippet holds its few lines

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        return LeNet(in_channels, num_classes)

    def preprocess(self) -> Preprocess:
        """32x32 inputs (its layers' sizes need them); no normalisation of its own: the
        dataset's, as the seed's CIFAR-10 statistics for CIFAR-10."""
        return Preprocess(INPUT_SIZE, resize=None, mean=None, std=None, channels=None)

    def roles(self, model: nn.Module) -> ParameterRoles:
        return roles_from_patterns(model, "lenet", head=r"fc3\.", stem=r"conv1\.")
