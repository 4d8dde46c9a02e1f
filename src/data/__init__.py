"""Datasets and their loaders: the embedded digits, image folders, torchvision's datasets."""
