"""Pretrained weights: find a checkpoint's files, read them safely, map its keys, load what
fits, report it."""
