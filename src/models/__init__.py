"""Models by config (`model=` picks one of conf/model/), each built for the run's input
channels and classes: the seed tutorial's LeNet (`lenet`) and any torchvision classifier by
name (`torchvision_models`, e.g. ResNet, ConvNeXt, ViT)."""
