"""A trained model's outputs on a loader, and what they say about it per class: accuracy,
top-5 accuracy, loss, precision, recall, F1, support and the confusion matrix."""

from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader


@torch.no_grad()
def outputs(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    autocast: Callable,
    on_device: Callable | None = None,
) -> Iterator[tuple[torch.Tensor, object]]:
    """(float32 logits on the CPU, the batch's second item: labels, paths, ...) per batch.
    `on_device`: what a batch gets on the device first (`Data.eval_on_device`)."""
    model.eval()
    for images, rest in loader:
        images = images.to(device, non_blocking=True)
        if on_device is not None:
            images = on_device(images)
        with autocast():
            logits = model(images)
        yield logits.float().cpu(), rest


def classification_report(
    logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]
) -> dict:
    """Every figure of `eval_<split>.json`, from all logits and true labels of a split.

    A class never predicted has precision 0, one absent from the split recall 0 (and support
    0), as scikit-learn reports them; F1 is then 0 too.
    """
    n = len(class_names)
    predicted = logits.argmax(1)
    confusion = torch.bincount(labels * n + predicted, minlength=n * n).view(n, n)
    correct = confusion.diag().double()
    precision = _ratio(correct, confusion.sum(0).double())
    recall = _ratio(correct, confusion.sum(1).double())
    f1 = _ratio(2 * precision * recall, precision + recall)
    report = {
        "images": len(labels),
        "accuracy": correct.sum().item() / len(labels),
        "loss": F.cross_entropy(logits, labels).item(),
    }
    if n > 5:
        top5 = logits.topk(5, dim=1).indices
        report["top5_accuracy"] = (top5 == labels[:, None]).any(1).double().mean().item()
    report["per_class"] = {
        name: {
            "precision": precision[i].item(),
            "recall": recall[i].item(),
            "f1": f1[i].item(),
            "support": int(confusion[i].sum()),
        }
        for i, name in enumerate(class_names)
    }
    report["classes"] = class_names
    report["confusion_matrix"] = confusion.tolist()  # rows: true class, columns: predicted
    return report


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-12), 0.0)


def format_report(report: dict) -> str:
    """The console table: the overall figures, then one row per class, then the matrix."""
    lines = [f"images    {report['images']:,}", f"accuracy  {report['accuracy']:.4f}"]
    if "top5_accuracy" in report:
        lines.append(f"top-5     {report['top5_accuracy']:.4f}")
    lines.append(f"loss      {report['loss']:.4f}")
    names = report["classes"]
    width = max(5, *(len(name) for name in names))
    lines += ["", f"{'class':<{width}}  precision  recall  f1      support"]
    for name, row in report["per_class"].items():
        lines.append(
            f"{name:<{width}}  {row['precision']:<9.4f}  {row['recall']:<6.4f}  "
            f"{row['f1']:<6.4f}  {row['support']:,}"
        )
    cell = max(4, *(len(f"{c:,}") for row in report["confusion_matrix"] for c in row))
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    for name, row in zip(names, report["confusion_matrix"], strict=True):
        lines.append(f"{name:<{width}}  " + " ".join(f"{c:>{cell},}" for c in row))
    return "\n".join(lines)
