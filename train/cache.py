"""The decoded-array cache and content hashing: what a dataset (or any input file) is, wherever it lies.

Arrays are cached under a key made from the source's content, so a moved or renamed file hits the cache and a
changed one never does; a cache file is renamed into place, never half-written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

CACHE_VERSION = "2"  # bump when decoding changes, so stale caches are not reused


def default_cache_dir() -> Path:
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer-edge")


def content_key(path: Path, skip_bad: bool) -> str:
    """The cache key of a dataset decoded from `path`: its content, the decoding version and `skip_bad`."""
    digest = hashlib.sha256(f"v{CACHE_VERSION} skip_bad={skip_bad}\n".encode())
    _hash_content(digest, path)
    return digest.hexdigest()[:24]


def content_sha256(path: str | os.PathLike) -> str:
    """What a dataset (or any input file) is, wherever it lies: sha256 of a file's bytes; of a folder, of every
    file's relative name and bytes. The cache key is made the same way."""
    digest = hashlib.sha256()
    _hash_content(digest, Path(path))
    return digest.hexdigest()


def _hash_content(digest, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)


def read_arrays(cache_file: Path) -> dict[str, np.ndarray]:
    """Every array of a cache file, by name."""
    with np.load(cache_file) as stored:
        return {name: stored[name] for name in stored.files}


def write_arrays(cache_file: Path, **arrays) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # renamed into place: no half-written cache; named by process, so parallel test workers never share one
    partial = cache_file.with_suffix(f".{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(cache_file)
