"""The encoders emotionlib fine-tunes or reads features from: one module each (where it comes from, how it is
verified, its default settings and provenance) and one registry. A name not in the registry is a local folder or
a Hugging Face id (`hub`). Adding an encoder is one module and one line in REGISTRY (docs/encoders.md)."""

from __future__ import annotations

from pathlib import Path

from emotionlib.encoders import gemma, hub, me5, minilm, mpnet, tiny_xlmr
from emotionlib.encoders.base import Encoder, EncoderUnavailable

REGISTRY: dict[str, Encoder] = {
    e.name: e
    for e in (minilm.ENCODER, mpnet.ENCODER, me5.ENCODER, gemma.ENCODER, tiny_xlmr.ENCODER, gemma.TINY_ENCODER)
}

__all__ = [
    "REGISTRY",
    "Encoder",
    "EncoderUnavailable",
    "describe",
    "prompt_for",
    "provenance_of",
    "resolve_encoder",
    "defaults_for",
]


def resolve_encoder(name: str) -> Path:
    """A local folder for `name`: a registered encoder, a directory, or a Hugging Face hub id (cache, then hub).
    Fails before any work starts, with what to install or set, when the encoder cannot be had offline."""
    return REGISTRY[name].find() if name in REGISTRY else hub.find(name)


def describe(name: str) -> str:
    return REGISTRY[name].description if name in REGISTRY else name


def prompt_for(name: str) -> str:
    """The task prefix an encoder was trained to read before a text for classification (empty for most)."""
    return REGISTRY[name].prompt if name in REGISTRY else ""


def provenance_of(name: str) -> dict:
    """What a run records of where its encoder's weights came from, beyond the name."""
    return REGISTRY[name].provenance() if name in REGISTRY else {}


def defaults_for(name: str) -> dict:
    """The settings `model=<name>` brings onto a profile made for another encoder."""
    return dict(REGISTRY[name].defaults) if name in REGISTRY else {}
