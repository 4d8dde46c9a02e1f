"""Models by config: the seed tutorial's LeNet."""

from torch import nn


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


def torchvision_model(name: str, num_classes: int, in_channels: int = 3, **kwargs) -> nn.Module:
    """Any torchvision classification model by name, built with random weights for the run's
    classes; pretrained weights come in through `pretrained`, whose filter skips the old head.

    A model for other than 3 input channels gets its first convolution rebuilt to take them.
    """
    import torchvision  # ~1 s of imports: only models that need it pay for it

    from src.errors import GroupwiseError

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        known = ", ".join(torchvision.models.list_models(torchvision.models)[:8])
        raise GroupwiseError(
            f"model.name={name}: not a torchvision classification model; e.g. {known}, ..."
        ) from None
    model = builder(weights=None, num_classes=num_classes, **kwargs)
    if in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(
                    parent,
                    child_name,
                    nn.Conv2d(
                        in_channels,
                        child.out_channels,
                        child.kernel_size,
                        child.stride,
                        child.padding,
                        child.dilation,
                        bias=child.bias is not None,
                    ),
                )
                return
