"""The CSV files the commands write (summary.csv, settings.csv, predictions.csv), read back as
a user's spreadsheet would: one dict per row, every cell the text written."""

import csv
from pathlib import Path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
