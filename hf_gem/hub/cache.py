"""Put a model folder into a local Hugging Face Hub cache, as if downloaded from ``repo_id``.

Machines without network access can then load the model by its repository id with
``HF_HUB_OFFLINE=1``: ``from_pretrained("ORG/NAME")``, ``timm.create_model("hf-hub:...")``
and ``hf_gem.hub.load_pretrained`` all resolve it through the cache. The layout is the one
huggingface_hub writes::

    <cache>/models--ORG--NAME/blobs/<hash>                  file contents
    <cache>/models--ORG--NAME/snapshots/<commit>/<file>     links to the blobs
    <cache>/models--ORG--NAME/refs/main                     the commit id

Blobs are named as on the Hub: the SHA-256 of the content for large binary files, the git
blob id for the others. The commit id is derived from the files, so the same folder always
gives the same commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from huggingface_hub import constants
from huggingface_hub.utils import validate_repo_id

BINARY_SUFFIXES = (".safetensors", ".png", ".bin", ".msgpack", ".h5")


def blob_name(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix in BINARY_SUFFIXES:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def add_to_hub_cache(folder, repo_id: str, cache_dir=None, revision: str = "main") -> Path:
    """Copy ``folder``'s files into the Hub cache as ``repo_id`` at ``revision``.

    Returns the snapshot folder. ``cache_dir`` defaults to huggingface_hub's cache
    (``HF_HUB_CACHE``, or ``HF_HOME/hub``).
    """
    validate_repo_id(repo_id)
    source = Path(folder)
    files = sorted(path for path in source.rglob("*") if path.is_file())
    if not files:
        raise FileNotFoundError(f"{source} holds no files to cache")
    root = Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    blobs = {path.relative_to(source).as_posix(): blob_name(path) for path in files}
    listing = "".join(f"{name} {blob}\n" for name, blob in sorted(blobs.items()))
    commit = hashlib.sha1(listing.encode()).hexdigest()

    snapshot = root / "snapshots" / commit
    for path in files:
        name = path.relative_to(source).as_posix()
        blob = root / "blobs" / blobs[name]
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # file systems without symbolic links get a copy, as the Hub's does
            shutil.copyfile(blob, link)
    ref = root / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)
    return snapshot
