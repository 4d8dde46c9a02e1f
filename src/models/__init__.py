"""Models by config: the seed's LeNet and torchvision's classifiers."""
