"""Pretrained weights: read a checkpoint safely, map its keys, load what fits, report it."""
