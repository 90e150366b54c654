"""The image-dataset table, its loaders and the batch collator (all offline)."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest
import timm
import torch

import hf_gem  # noqa: F401  registers the image models
from hf_gem.training import vision_data
from hf_gem.training.vision_data import (
    IMAGE_DATASETS, IDX_FILES, DataError, ImageCollator, dataset_info, load_image_dataset,
)


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    magic = (0x08 << 8) | array.ndim  # unsigned bytes, then the number of dimensions
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_idx_dataset(folder, train: int, test: int, classes: int = 10, compress=True):
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        images_stem, labels_stem = IDX_FILES[split]
        write_idx(folder / images_stem, rng.integers(0, 256, (count, 28, 28)), compress)
        write_idx(folder / labels_stem, np.arange(count) % classes, compress)


def test_every_row_of_the_table_is_consistent():
    for name, info in IMAGE_DATASETS.items():
        assert info.name == name
        assert len(info.mean) == len(info.std) == info.channels
        assert timm.is_model(info.default_model)
        assert not info.class_names or len(info.class_names) == info.num_classes
        assert info.source in ("sklearn", "idx", "hub")
        assert (info.hub_id is not None) == (info.source == "hub")
    assert dataset_info("cifar100").num_classes == 100


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match="--dataset 'cifar1'.*digits, fashion_mnist, mnist"):
        dataset_info("cifar1")


def test_digits_split_is_fixed_stratified_and_held_out():
    first, second = load_image_dataset("digits"), load_image_dataset("digits")
    assert (len(first.train), len(first.test)) == (1437, 360)
    assert first.train.images.shape[1:] == (1, 8, 8) and first.train.images.dtype == torch.uint8
    assert torch.equal(first.test.images, second.test.images)
    assert torch.bincount(first.test.labels).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    # No test image is also a training image (the 1,797 digits contain no duplicates).
    train_rows = {bytes(row) for row in first.train.images.flatten(1).numpy()}
    assert not any(bytes(row) in train_rows for row in first.test.images.flatten(1).numpy())
    assert int(first.train.images.max()) == 255


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_from_data_dir(tmp_path, compress):
    write_idx_dataset(tmp_path, train=30, test=12, compress=compress)
    splits = load_image_dataset("fashion_mnist", data_dir=tmp_path, max_train_samples=20)
    assert splits.train.images.shape == (20, 1, 28, 28)
    assert splits.test.labels.tolist() == [i % 10 for i in range(12)]
    assert splits.class_names[0] == "T-shirt/top"
    assert "IDX files" in splits.source


def test_data_dir_without_the_files_names_flag_and_files(tmp_path):
    with pytest.raises(DataError, match="--data_dir.*t10k-labels-idx1-ubyte"):
        load_image_dataset("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="--data_dir.*save_to_disk"):
        load_image_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(DataError, match="leave out --data_dir"):
        load_image_dataset("digits", data_dir=tmp_path)


def test_labels_beyond_the_class_count_are_refused(tmp_path):
    write_idx_dataset(tmp_path, train=30, test=12, classes=12)
    with pytest.raises(DataError, match="run from 0 to 11, but mnist has 10 classes"):
        load_image_dataset("mnist", data_dir=tmp_path)


def test_saved_dataset_dict_stands_in_for_the_hub(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)

    def split(count):
        return datasets.Dataset.from_dict(
            {"img": rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
             "fine_label": list(range(count))},
            features=datasets.Features({"img": datasets.Image(),
                                        "fine_label": datasets.ClassLabel(num_classes=100)}),
        )

    datasets.DatasetDict(train=split(24), test=split(8)).save_to_disk(str(tmp_path))
    splits = load_image_dataset("cifar100", data_dir=tmp_path)
    assert splits.train.images.shape == (24, 3, 32, 32)
    assert splits.test.labels.tolist() == list(range(8))
    with pytest.raises(DataError, match="no 'label' column"):
        load_image_dataset("cifar10", data_dir=tmp_path)  # CIFAR-10 wants a 'label' column


def test_unreachable_hub_fails_fast_with_advice(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(vision_data, "hub_endpoint", lambda: "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(DataError, match="cannot be reached.*--data_dir.*--dataset digits"):
        load_image_dataset("cifar10")
    assert time.perf_counter() - started < 10


def test_collator_normalises_and_augments_per_image():
    info = dataset_info("cifar10")
    image = torch.arange(3 * 32 * 32, dtype=torch.int64).remainder(256).to(torch.uint8)
    examples = [(image.reshape(3, 32, 32), 3)] * 16
    plain = ImageCollator(info, train=False)(examples)
    assert plain["pixel_values"].shape == (16, 3, 32, 32)
    assert plain["labels"].tolist() == [3] * 16
    expected = (image.reshape(3, 32, 32).float() / 255 - 0.4914) / 0.2470
    torch.testing.assert_close(plain["pixel_values"][0, 0], expected[0])

    torch.manual_seed(0)
    augmented = ImageCollator(info, train=True)(examples)["pixel_values"]
    assert augmented.shape == (16, 3, 32, 32)
    assert len({bytes(a.numpy()) for a in augmented}) > 1  # crops and flips differ per image
    torch.manual_seed(0)
    again = ImageCollator(info, train=True)(examples)["pixel_values"]
    assert torch.equal(augmented, again)  # the same random state gives the same batch


def test_digits_are_never_augmented():
    collator = ImageCollator(dataset_info("digits"), train=True)
    assert collator.augment is None
