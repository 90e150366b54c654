"""Image classification datasets, described by one table and loaded by one function.

Each row of :data:`IMAGE_DATASETS` gives a dataset's image size, channels, classes,
normalisation, augmentation and where its files come from. :func:`load_image_dataset` turns a
row into two in-memory splits of uint8 images, and :class:`ImageCollator` turns examples into
normalised, augmented batches. Sources, by dataset:

* ``digits`` (the offline default): scikit-learn's 1,797 handwritten 8x8 digits, shipped inside
  scikit-learn. The held-out test split is a fixed, stratified 20 % (360 images), the same
  in every run whatever the training seed.
* ``fashion_mnist``: the IDX files of the Debian package ``dataset-fashion-mnist`` (read from
  ``/usr/share/datasets/fashion-mnist``), or from ``--data_dir``. Offline.
* ``mnist``, ``cifar10``, ``cifar100``: downloaded from the Hugging Face Hub by ``datasets``
  (online), or read offline from ``--data_dir``: a folder written by
  ``DatasetDict.save_to_disk`` with ``train`` and ``test`` splits, or (MNIST) the four IDX files.
"""

from __future__ import annotations

import gzip
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

TEN_DIGITS = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
IDX_FILES = {  # split -> (images, labels); a ".gz" ending is accepted as well
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED = 0.2, 0


class DataError(ValueError):
    """A dataset that cannot be loaded, with what to do about it."""


@dataclass(frozen=True)
class ImageDatasetInfo:
    """One row of the table: everything the loader and the recipe need to know."""

    name: str
    description: str
    image_size: int
    channels: int
    num_classes: int
    mean: tuple
    std: tuple
    source: str  # "sklearn" (digits), "idx" (IDX files on disk) or "hub" (the Hugging Face Hub)
    default_model: str
    hub_id: str | None = None
    image_column: str = "image"
    label_column: str = "label"
    reads_idx: bool = False  # IDX files in --data_dir are accepted
    default_data_dir: str | None = None
    crop_padding: int = 0  # random crop after zero padding by this many pixels; 0 = none
    horizontal_flip: bool = False
    class_names: tuple = ()
    # Training settings the recipe uses when its flags are left out.
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 0.05
    weight_decay: float = 5e-4


IMAGE_DATASETS = {info.name: info for info in (
    ImageDatasetInfo(
        "digits", "scikit-learn's handwritten digits (8x8, offline)", 8, 1, 10,
        (0.3053,), (0.3759,), "sklearn", "mnist_cnn", class_names=TEN_DIGITS,
        epochs=15, batch_size=32,
    ),
    ImageDatasetInfo(
        "fashion_mnist", "Fashion-MNIST (28x28, offline: Debian package or --data_dir)",
        28, 1, 10, (0.2860,), (0.3530,), "idx", "mnist_cnn", reads_idx=True,
        default_data_dir="/usr/share/datasets/fashion-mnist", class_names=FASHION_CLASSES,
        epochs=3,
    ),
    ImageDatasetInfo(
        "mnist", "MNIST (28x28, online: Hugging Face Hub, or --data_dir)", 28, 1, 10,
        (0.1307,), (0.3081,), "hub", "mnist_cnn", hub_id="ylecun/mnist", reads_idx=True,
        class_names=TEN_DIGITS, epochs=3,
    ),
    ImageDatasetInfo(
        "cifar10", "CIFAR-10 (32x32, online: Hugging Face Hub, or --data_dir)", 32, 3, 10,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "hub", "cifar_resnet56",
        hub_id="uoft-cs/cifar10", image_column="img", crop_padding=4, horizontal_flip=True,
        class_names=CIFAR10_CLASSES, epochs=200, learning_rate=0.1,
    ),
    ImageDatasetInfo(
        "cifar100", "CIFAR-100 (32x32, online: Hugging Face Hub, or --data_dir)", 32, 3, 100,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "hub", "cifar_resnet56",
        hub_id="uoft-cs/cifar100", image_column="img", label_column="fine_label",
        crop_padding=4, horizontal_flip=True, epochs=200, learning_rate=0.1,
    ),
)}


def dataset_info(name: str) -> ImageDatasetInfo:
    """The table row for ``name``, or a DataError naming ``--dataset`` and the choices."""
    if name not in IMAGE_DATASETS:
        choices = ", ".join(IMAGE_DATASETS)
        raise DataError(f"--dataset {name!r} is not a known image dataset; "
                        f"choose one of: {choices}")
    return IMAGE_DATASETS[name]


class TensorImageDataset(Dataset):
    """uint8 images (N, C, H, W) and int64 labels held in memory; items are (image, label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])


@dataclass
class ImageSplits:
    info: ImageDatasetInfo
    train: TensorImageDataset
    test: TensorImageDataset
    source: str  # where the images were read from, for the log
    class_names: tuple = ()


class ImageCollator:
    """Stack (image, label) examples into ``{"pixel_values", "labels"}``, augmenting if asked.

    Augmentation (the table's random crop with padding and horizontal flip) is applied per
    image and draws from the global random state; the training loop runs collation under a
    seed taken from the batch, so a resumed run augments exactly as an uninterrupted one.
    """

    def __init__(self, info: ImageDatasetInfo, train: bool):
        steps = []
        if train and info.crop_padding:
            steps.append(v2.RandomCrop(info.image_size, padding=info.crop_padding))
        if train and info.horizontal_flip:
            steps.append(v2.RandomHorizontalFlip())
        self.augment = v2.Compose(steps) if steps else None
        self.normalise = v2.Compose([
            v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(info.mean), list(info.std)),
        ])

    def __call__(self, examples) -> dict:
        images = [image for image, _ in examples]
        if self.augment is not None:
            images = [self.augment(image) for image in images]
        pixel_values = self.normalise(torch.stack(images))
        labels = torch.tensor([label for _, label in examples], dtype=torch.long)
        return {"pixel_values": pixel_values, "labels": labels}


def load_image_dataset(name: str, data_dir=None, max_train_samples: int | None = None,
                       max_test_samples: int | None = None) -> ImageSplits:
    """Load both splits of ``name`` into memory, checked against its row of the table."""
    info = dataset_info(name)
    class_names = info.class_names
    if info.source == "sklearn":
        if data_dir is not None:
            raise DataError(f"--dataset {name} ships with scikit-learn; leave out --data_dir")
        arrays, source = _digits_arrays(), "scikit-learn (sklearn.datasets.load_digits)"
    elif data_dir is not None or info.source == "idx":
        arrays, source, found_names = _arrays_from_folder(info, data_dir)
        class_names = found_names or class_names
    else:
        arrays, source, found_names = _arrays_from_hub(info)
        class_names = found_names or class_names
    splits = {}
    for split, limit in (("train", max_train_samples), ("test", max_test_samples)):
        images, labels = _check_split(info, split, *arrays[split], source)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        splits[split] = TensorImageDataset(images, labels)
    return ImageSplits(info, splits["train"], splits["test"], source, tuple(class_names))


def _digits_arrays() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Values are 0..16; scale them to the 0..255 of every other dataset here.
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_FRACTION, stratify=digits.target,
        random_state=DIGITS_SPLIT_SEED,
    )
    return {"train": (train_x, train_y), "test": (test_x, test_y)}


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path} is not an IDX file of the expected kind (magic number {magic})")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    header = 4 + 4 * len(dims)
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: {data.size} bytes of data for shape {dims}")
    return data.reshape(dims)


def _arrays_from_folder(info: ImageDatasetInfo, data_dir):
    folder = Path(data_dir if data_dir is not None else info.default_data_dir)
    expected = []
    if info.reads_idx:
        stems = [stem for split in ("train", "test") for stem in IDX_FILES[split]]
        found = {stem: _find_idx_file(folder, stem) for stem in stems}
        if all(found.values()):
            arrays = {
                split: (_read_idx(found[images], 2051), _read_idx(found[labels], 2049))
                for split, (images, labels) in IDX_FILES.items()
            }
            return arrays, f"IDX files in {folder}", ()
        expected.append("the IDX files " + ", ".join(f"{stem}[.gz]" for stem in stems))
    if info.hub_id is not None:
        if (folder / "dataset_dict.json").is_file():
            from datasets import load_from_disk

            arrays, names = _arrays_from_dataset_dict(info, load_from_disk(str(folder)))
            return arrays, f"a saved DatasetDict in {folder}", names
        expected.append("a DatasetDict saved with save_to_disk (dataset_dict.json, with "
                        "'train' and 'test' splits)")
    flag = "--data_dir" if data_dir is not None else f"--data_dir (default {folder})"
    hint = ""
    if data_dir is None and info.name == "fashion_mnist":
        hint = " Install it with `apt-get install dataset-fashion-mnist`, or pass --data_dir."
    raise DataError(
        f"{flag}: {folder} does not hold {info.name}; expected {' or '.join(expected)}.{hint}"
    )


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _hub_is_reachable(timeout: float = 5.0) -> bool:
    """A quick connection test, so that an offline machine fails in seconds, not minutes."""
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # a proxy may reach what a direct connection cannot; let datasets try
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_mode() -> bool:
    return any(os.environ.get(key, "").upper() in ("1", "ON", "YES", "TRUE")
               for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _arrays_from_hub(info: ImageDatasetInfo):
    advice = (
        f"--dataset {info.name} downloads {info.hub_id!r} from the Hugging Face Hub. Run once "
        "with network access (the datasets cache keeps it; HF_HUB_OFFLINE=1 then reads the "
        "cache), or pass --data_dir with a copy saved by save_to_disk, or train offline with "
        "--dataset digits or --dataset fashion_mnist."
    )
    if not _offline_mode() and not _hub_is_reachable():
        raise DataError(f"The Hugging Face Hub ({hub_endpoint()}) cannot be reached. {advice}")
    from datasets import load_dataset

    try:
        dataset_dict = load_dataset(info.hub_id)
    except (ConnectionError, OSError, FileNotFoundError) as error:
        raise DataError(f"Could not load {info.hub_id!r} ({error}). {advice}") from None
    arrays, names = _arrays_from_dataset_dict(info, dataset_dict)
    return arrays, f"the Hugging Face Hub ({info.hub_id})", names


def _arrays_from_dataset_dict(info: ImageDatasetInfo, dataset_dict):
    arrays, names = {}, ()
    for split in ("train", "test"):
        if split not in dataset_dict:
            raise DataError(f"{info.name}: the dataset has no {split!r} split "
                            f"(splits: {', '.join(dataset_dict)})")
        dataset = dataset_dict[split]
        for column in (info.image_column, info.label_column):
            if column not in dataset.column_names:
                raise DataError(f"{info.name}: the {split} split has no {column!r} column "
                                f"(columns: {', '.join(dataset.column_names)})")
        columns = dataset.select_columns([info.image_column, info.label_column])
        columns = columns.with_format("numpy")
        arrays[split] = (columns[info.image_column], columns[info.label_column])
        names = tuple(getattr(dataset.features[info.label_column], "names", None) or ())
    return arrays, names


def _check_split(info: ImageDatasetInfo, split: str, images, labels, source: str):
    """Shape (N, C, H, W) uint8 images and int64 labels, or a DataError naming the mismatch."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3 and info.channels == 1:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] == info.channels:
        images = images.transpose(0, 3, 1, 2)  # stored as (N, H, W, C)
    expected = (info.channels, info.image_size, info.image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise DataError(f"{info.name} {split} images from {source} have shape "
                        f"{tuple(images.shape[1:])}, expected (channels, height, width) = "
                        f"{expected}")
    if len(images) != len(labels) or len(labels) == 0:
        raise DataError(f"{info.name} {split} split from {source}: {len(images)} images "
                        f"and {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= info.num_classes:
        raise DataError(f"{info.name} {split} labels from {source} run from {labels.min()} to "
                        f"{labels.max()}, but {info.name} has {info.num_classes} classes")
    images = torch.from_numpy(np.array(images, dtype=np.uint8, order="C"))  # a writable copy
    return images, torch.from_numpy(labels.astype(np.int64))
