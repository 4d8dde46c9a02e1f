"""`python -m src.run param_groups=fc3_boost` written by hand in plain PyTorch, as a user
would: the baseline of `end_to_end.py`. Run from the repo root: python -m
benchmarks.handwritten_fc3_boost OUT_DIR"""

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter


class Net(nn.Module):  # the seed's LeNet, on one input channel
    def __init__(self, num_classes):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2 = nn.Linear(400, 120), nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


out = Path(sys.argv[1])
torch.manual_seed(0)
# scikit-learn's digits, read from the file it ships; digits 5-9 at 32x32.
sklearn_dir = Path(importlib.util.find_spec("sklearn").origin).parent
with gzip.open(sklearn_dir / "datasets" / "data" / "digits.csv.gz", "rt") as f:
    table = np.loadtxt(f, delimiter=",")
pixels = torch.tensor(table[:, :-1], dtype=torch.float32).view(-1, 1, 8, 8) / 16
images = F.interpolate(pixels, size=(32, 32), mode="bilinear")
labels = torch.tensor(table[:, -1]).long()
generator, train_idx, val_idx = torch.Generator().manual_seed(0), [], []
for digit in range(5, 10):  # the split is stratified: 20% of each digit; 20% more held out for test
    idx = (labels == digit).nonzero().flatten()
    idx = idx[torch.randperm(len(idx), generator=generator)]
    n_val = round(len(idx) * 0.2)
    train_idx.append(idx[n_val : len(idx) - n_val])
    val_idx.append(idx[:n_val])
train_idx, val_idx = torch.cat(train_idx), torch.cat(val_idx)
train_set = TensorDataset(images[train_idx], labels[train_idx] - 5)
val_set = TensorDataset(images[val_idx], labels[val_idx] - 5)
train_loader = DataLoader(train_set, 16, shuffle=True, generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(val_set, batch_size=256)

net = Net(num_classes=5)
pretrained = torch.load("weights/lenet_digits_0-4.pt", weights_only=True)
net.load_state_dict({k: v for k, v in pretrained.items() if not k.startswith("fc3.")}, strict=False)
groups = []  # fc3 at 10x the base lr; 1-D tensors (biases) without weight decay
for name, lr in (("default", 0.001), ("fc3", 0.01)):
    params = [p for n, p in net.named_parameters() if n.startswith("fc3.") == (name == "fc3")]
    groups.append({"name": name, "lr": lr, "params": [p for p in params if p.ndim > 1]})
    groups.append(
        {"name": name, "lr": lr, "params": [p for p in params if p.ndim == 1], "weight_decay": 0}
    )
optimizer = torch.optim.SGD(groups, lr=0.001, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.1)
writer = SummaryWriter(out)
step = 0
for epoch in range(1, 21):
    net.train()
    train_loss = 0.0
    for x, y in train_loader:
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_loss += loss.item() / len(train_loader)
        if step % 10 == 0:
            writer.add_scalar("train/loss", loss.item(), step)
            for group in optimizer.param_groups[::2]:
                writer.add_scalar(f"lr/{group['name']}", group["lr"], step)
        step += 1
    scheduler.step()
    net.eval()
    with torch.no_grad():
        logits, y = torch.cat([net(x) for x, _ in val_loader]), val_set.tensors[1]
    val_loss, val_acc = (
        F.cross_entropy(logits, y).item(),
        (logits.argmax(1) == y).double().mean().item(),
    )
    writer.add_scalar("val/loss", val_loss, step)
    writer.add_scalar("val/acc", val_acc, step)
    print(
        f"epoch {epoch}/20  train/loss {train_loss:.4f}  val/loss {val_loss:.4f}  val/acc {val_acc:.4f}"
    )
writer.close()
checkpoint = {
    "model": net.state_dict(),
    "optimizer": optimizer.state_dict(),
    "scheduler": scheduler.state_dict(),
}
torch.save(checkpoint, out / "last.pt")
