"""emotionlib's messages (training epochs, skipped steps, feature passes, stacks) go through the `emotionlib` logger:
by default as plain lines on standard output at INFO, so that a notebook shows them under its cell and `make report`
in the terminal. Quieten or redirect them with logging, e.g. logging.getLogger("emotionlib").setLevel("WARNING")."""

from __future__ import annotations

import logging
import sys


class _Stdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a message comes (a notebook kernel's, a test's), not the one at import."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler sets it once; the property above decides
        pass


def setup() -> logging.Logger:
    """The package logger with its default handler, unless the application has given it one of its own."""
    root = logging.getLogger("emotionlib")
    if not root.handlers:
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False  # the application's root handlers would print each line twice
    return root


def main_info(logger: logging.Logger, accelerator, message: str) -> None:
    """`message` at INFO from the main process only (under accelerate launch the others stay quiet)."""
    if accelerator.is_main_process:
        logger.info(message)
