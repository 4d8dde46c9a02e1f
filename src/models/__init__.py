"""Models by config (`model=` picks one of conf/model/), each built for the run's input
channels and classes: the seed tutorial's LeNet (`lenet`), any torchvision classifier by name
(`torchvision_models`, e.g. ResNet, ConvNeXt, ViT), any timm model (`timm_models`) and any
Hugging Face image classifier (`hf_models`); the last two need their optional extras."""

# The built-in sources, registered for dataset.transform_from as their classes are defined.
from src.models import hf_models, lenet, timm_models, torchvision_models  # noqa: F401
