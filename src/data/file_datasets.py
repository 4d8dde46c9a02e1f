"""What the datasets read from files share: their options read once into the loader settings,
the preprocessing and the augmentation (how `image_folder` and the torchvision datasets both
start), and the checks those options need beyond their ranges."""

from dataclasses import dataclass

from src.config.dataset_schema import FileDatasetConfig
from src.data.loading import Loading
from src.data.transforms import Augmentation, evaluation_view, preprocess_for
from src.data.view import View
from src.models.contract import Preprocess


@dataclass(frozen=True)
class FileDataset:
    """A file dataset's options, as its builder uses them."""

    loading: Loading
    pre: Preprocess  # how an image becomes the model's input
    augmentation: Augmentation


def file_dataset(
    options: FileDatasetConfig, seed: int, native: Preprocess, model_preprocess: Preprocess | None
) -> FileDataset:
    """`native`: the dataset's own preprocessing; `model_preprocess`: the model source's, which
    `transform_from=model` (the default) takes; the dataset's crop_pct and interpolation
    override theirs."""
    return FileDataset(
        Loading(
            options.batch_size,
            seed,
            options.num_workers,
            options.pin_memory,
            options.persistent_workers,
        ),
        evaluation_view(
            preprocess_for(options.transform_from, options.image_size, native, model_preprocess),
            options.crop_pct,
            options.interpolation,
        ),
        Augmentation(
            options.augment,
            options.random_erasing,
            options.randaugment_num_ops,
            options.randaugment_magnitude,
            View.of(options),
        ),
    )


def problems(options: FileDatasetConfig) -> list[str]:
    """What no single option's range can say (each range is in the schema)."""
    if options.persistent_workers and options.num_workers == 0:
        return [
            "dataset.persistent_workers=true needs worker processes; set dataset.num_workers "
            "to 1 or more, or persistent_workers=false"
        ]
    return []
