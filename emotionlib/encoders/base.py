"""What every encoder module declares: its name, an honest description, how its folder is found (and installed
and verified), its provenance, the prompt it reads texts with, and the settings it trains best with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


class EncoderUnavailable(RuntimeError):
    """The requested encoder is neither local nor reachable; the message says what to install or set."""


@dataclass(frozen=True)
class Encoder:
    name: str  # the `model` value that selects it
    description: str  # what it is and where it comes from, as the report and metadata name it
    find: Callable[[], Path]  # its verified local folder, or EncoderUnavailable saying how to get it
    provenance: Callable[[], dict] = dict  # recorded in every run's provenance.json
    prompt: str = ""  # put before each text its frozen features are computed from
    # the settings `--set model=<name>` (or `make report MODEL=<name>`) brings onto a profile made for another
    # encoder; the other overrides given still win
    defaults: Mapping[str, Any] = field(default_factory=dict)
