"""Randomness that a resumed run can reproduce exactly.

A run stopped at update k and resumed must see the same batches, the same dropout masks and
the same random masking as a run that never stopped. Three pieces make that hold:

* :class:`EpochSampler` shuffles with a permutation that depends on (seed, epoch) alone, so
  the loop can jump to any batch of any epoch with ``accelerator.skip_first_batches``.
* :func:`seed_everything` reseeds Python, NumPy and torch from :func:`derive_seed`; the loop
  calls it before every micro-batch, so dropout depends on the position in training alone.
* :class:`KeyedCollator` runs a collate function that draws random numbers (the masked-LM
  collator, image augmentation done at collation) under a seed taken from the batch itself.
  Accelerate fetches one batch ahead of the one it yields, so a collator that used the global
  random state would draw from a different point of the stream after a resume.
"""

from __future__ import annotations

import hashlib
import random
import zlib
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


def derive_seed(*parts) -> int:
    """A 63-bit seed that depends on every part (ints or strings), stable across runs."""
    text = "/".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (torch seeds every device too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochSampler(Sampler[int]):
    """Indices 0..n-1, shuffled by a permutation that depends only on (seed, epoch).

    ``set_epoch`` is called by the loop (and by Accelerate's data loader) before each pass.
    With ``shuffle=False`` the order is 0..n-1 in every epoch.
    """

    def __init__(self, num_items: int, seed: int, shuffle: bool = True):
        self.num_items, self.seed, self.shuffle = int(num_items), int(seed), shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_items))
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
        return iter(torch.randperm(self.num_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_items


def _crc_of(value, crc: int) -> int:
    if isinstance(value, torch.Tensor):
        return zlib.crc32(value.detach().cpu().contiguous().numpy().tobytes(), crc)
    if isinstance(value, np.ndarray):
        return zlib.crc32(np.ascontiguousarray(value).tobytes(), crc)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
        return zlib.crc32(np.asarray(value).tobytes(), crc)
    if isinstance(value, (list, tuple)):
        for item in value:
            crc = _crc_of(item, crc)
        return crc
    if isinstance(value, dict):
        for key in sorted(value):
            crc = _crc_of(value[key], zlib.crc32(str(key).encode(), crc))
        return crc
    return zlib.crc32(repr(value).encode(), crc)


def batch_key(examples: Sequence) -> int:
    """A checksum of a batch's content (token ids, pixels, labels)."""
    return _crc_of(list(examples), 0)


class KeyedCollator:
    """Run ``collate_fn`` with the global random state seeded from (seed, the batch's content).

    The caller's random state is left as it was. Two different batches get unrelated random
    numbers; the same batch met again (after a resume) gets the same ones.
    """

    def __init__(self, collate_fn: Callable, seed: int):
        self.collate_fn, self.seed = collate_fn, int(seed)

    def __call__(self, examples):
        with torch.random.fork_rng(devices=[]):
            state = random.getstate(), np.random.get_state()
            seed_everything(derive_seed(self.seed, "collate", batch_key(examples)))
            try:
                return self.collate_fn(examples)
            finally:
                random.setstate(state[0])
                np.random.set_state(state[1])


def make_train_dataloader(
    dataset, batch_size: int, seed: int, collate_fn: Callable | None = None,
    num_workers: int = 0, drop_last: bool = True, random_collation: bool = True,
) -> DataLoader:
    """A shuffled training loader whose order (and random collation) a resume reproduces.

    ``drop_last`` keeps every batch full, so several processes see batches of one size and a
    run on P processes with batch b sees the same examples per update as one process with
    batch P * b. Pass ``random_collation=False`` for a collate function that draws no random
    numbers, to skip the keyed seeding.
    """
    if collate_fn is not None and random_collation:
        collate_fn = KeyedCollator(collate_fn, seed)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), seed),
        collate_fn=collate_fn, num_workers=num_workers, drop_last=drop_last,
    )


def make_eval_dataloader(
    dataset, batch_size: int, seed: int, collate_fn: Callable | None = None,
    num_workers: int = 0, random_collation: bool = True,
) -> DataLoader:
    """An evaluation loader in fixed order; random collation (masking) is the same each time."""
    if collate_fn is not None and random_collation:
        collate_fn = KeyedCollator(collate_fn, seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn,
        num_workers=num_workers,
    )
