"""Datasets as in-memory tensors, plus batched on-device augmentation.

``load_dataset(DataConfig(name="shapes"))`` gives a :class:`Dataset` (train/val images — uint8 for the
big file-based sets, float32 in [0, 1] for the small ones, with float32 views ``x_train``/``x_val`` —
labels, class names, per-channel mean/std). Names are listed in ``DATASETS``; file-based ones (cifar10,
cifar100, mnist, fashion_mnist, svhn, imagenette) are read from ``$RESNET_LAB_HOME/data``, where they are
downloaded on request; loading never downloads.
"""

from .augment import augment_batch, denormalize, normalize, pad_crop_flip
from .registry import (
    DATASET_INFO,
    DATASETS,
    DataConfig,
    Dataset,
    DatasetInfo,
    channel_stats,
    data_root,
    dataset_info,
    lab_home,
    load_dataset,
    stratified_order,
    take_subset,
)
from .shapes import SHAPE_CLASSES, generate_shapes
from .torchvision_sets import DatasetMissing

__all__ = [
    "DATASETS",
    "DATASET_INFO",
    "DataConfig",
    "Dataset",
    "DatasetInfo",
    "DatasetMissing",
    "SHAPE_CLASSES",
    "augment_batch",
    "channel_stats",
    "data_root",
    "dataset_info",
    "denormalize",
    "generate_shapes",
    "lab_home",
    "load_dataset",
    "normalize",
    "pad_crop_flip",
    "stratified_order",
    "take_subset",
]
