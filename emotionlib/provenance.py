"""The provenance every result carries: the commit, the library versions and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "emotionlib",
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "scikit-learn",
    "iterative-stratification",
    "lime",
    "numpy",
    "pandas",
    "papermill",
    "nbconvert",
)


def git_commit(cwd: Path | None = None) -> str:
    """The commit of the emotionlib checkout, with '+dirty' when there are uncommitted changes; 'unknown' for an
    installed wheel (whose folder may lie inside somebody else's git repository) or outside git."""
    checkout = Path(__file__).resolve().parent.parent
    if cwd is None and not ((checkout / ".git").exists() and (checkout / "pyproject.toml").is_file()):
        return "unknown"
    cwd = cwd or checkout
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_version() -> str:
    """The installed emotionlib's version (pyproject's), or 'unknown' when emotionlib is not installed."""
    try:
        return metadata.version("emotionlib")
    except metadata.PackageNotFoundError:
        return "unknown"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    import torch

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in (platform.processor(), platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    # what decides the ceiling of a speed figure: the vector units and the native low-precision arithmetic
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {
        "cpu": cpu,
        "cpu_features": [f for f in wanted if f in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),  # what libgomp read, if torch came after emotionlib
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def provenance(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"commit": git_commit(), "libraries": library_versions(), "hardware": hardware(), **(extra or {})}
