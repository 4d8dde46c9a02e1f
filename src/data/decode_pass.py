"""The one pass that decodes a folder for its cache, file order kept, with a progress bar: in
DataLoader worker processes on the CPU (`dataset.num_workers`; libjpeg decodes one image per
core), or in batches by nvJPEG when this process has a GPU."""

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from src import stopping
from src.data.decode import JPEG_SUFFIXES, Decoder, decode_jpegs_on

# Files per nvJPEG call: enough to fill the decoder, few enough for the GPU's memory.
GPU_BATCH = 64


class _Decoded(Dataset):
    def __init__(self, files: list[Path], decoder: Decoder):
        self.files, self.decoder = files, decoder

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.decoder(self.files[i])


def decoded_in_order(
    files: list[Path], decoder: Decoder, workers: int, folder: Path
) -> Iterator[torch.Tensor]:
    """Each file's stored image, in the order of `files`. The bar shows only on a terminal
    (tqdm's `disable=None`), as the training bars do."""
    bar = tqdm(total=len(files), desc=f"caching {folder.name}", unit="img", disable=None)
    try:
        if torch.cuda.is_available():
            images = _on_gpu(files, decoder, torch.device("cuda", torch.cuda.current_device()))
        else:
            # Its own generator: a DataLoader draws its workers' seed from torch's global one
            # otherwise, and the run that builds would train differently from those that reuse.
            loader = DataLoader(
                _Decoded(files, decoder),
                batch_size=None,
                num_workers=workers,
                shuffle=False,
                generator=torch.Generator(),
                worker_init_fn=stopping.worker_leaves_signals_to_main,
            )
            images = iter(loader)
        for image in images:
            bar.update(1)
            yield image
    finally:
        bar.close()


def _on_gpu(files: list[Path], decoder: Decoder, device: torch.device) -> Iterator[torch.Tensor]:
    """JPEGs batched through nvJPEG; other formats (PNG, BMP, ...) decoded on the CPU."""
    for start in range(0, len(files), GPU_BATCH):
        batch = files[start : start + GPU_BATCH]
        jpegs = [f for f in batch if f.suffix.lower() in JPEG_SUFFIXES]
        decoded = dict(zip(jpegs, decode_jpegs_on(device, jpegs, decoder), strict=True))
        yield from (decoded[f] if f in decoded else decoder(f) for f in batch)
