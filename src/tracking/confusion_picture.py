"""The confusion matrix as a picture for TensorBoard's images tab: cells coloured by the share
of each true class, counts written in them, both axes labelled by class name. Drawn with
matplotlib, the optional `plot` extra, imported only here."""

import numpy as np

INSTALL_HINT = 'the confusion matrix picture needs matplotlib: pip install -e ".[plot]"'


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def draw(matrix: list[list[int]], class_names: list[str], title: str) -> np.ndarray:
    """An RGB image (height, width, 3) of the matrix, sized so 10 classes read easily."""
    import matplotlib

    matplotlib.use("Agg")  # no display: drawn into memory
    from matplotlib import pyplot as plt

    counts = np.asarray(matrix)
    n = len(class_names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.55 * n + 2.5)  # inches; 10 classes: 8 inches at 100 dpi
    figure, axes = plt.subplots(figsize=(side, side), dpi=100)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), class_names, rotation=45, ha="right")
    axes.set_yticks(range(n), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    font = max(6, 12 - n // 5)
    for i in range(n):
        for j in range(n):
            colour = "white" if shares[i, j] > 0.5 else "black"
            axes.text(j, i, f"{counts[i, j]:,}", ha="center", va="center", color=colour, size=font)
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image
