"""The machine a pass runs on: its precision (bf16 where the CPU multiplies it natively) and its threads (the cores
other work leaves free, decided again while a training runs)."""

from __future__ import annotations

import collections
import logging
import math
import os
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

DEFAULT_THREADS = torch.get_num_threads()  # at import: later calls may have lowered it for one training
TAKEN_FROM = 0.25  # busy share of a core from which it counts as taken (free_threads)
SLOW_STEP = 5.0  # a step this many times the recent median is checked at once (ThreadGovernor)
MIN_WINDOW = 0.25  # seconds: /proc/stat counts in 10 ms ticks, so a shorter window is mostly rounding


# --- precision ----------------------------------------------------------------------------------------------------


def resolve_precision(wanted: str) -> str:
    """`mixed_precision: auto`: bf16 on a GPU that has it, or on a CPU with native bf16 dot products (AVX512-BF16
    or AMX); fp32 ("no") elsewhere. oneDNN also runs bf16 on plain AVX-512 by converting, which measured slower
    than fp32 (benchmarks/precision.py), so that does not count. `torch.backends.cpu.get_cpu_capability()` is
    recorded in provenance."""
    if wanted != "auto":
        return wanted
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if native_cpu_bf16() else "no"


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX tiles) and oneDNN has kernels for it."""
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return bool(native and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


# --- threads --------------------------------------------------------------------------------------------------------


def cpu_sample() -> tuple[float, float, float]:
    """(all cores' time, their idle time, this process's own CPU time), in seconds since boot / start; zeros where
    /proc/stat is not readable. Niced work counts as busy: under the kernel's autogroup scheduling (the default on
    desktop Linux) another session's niced process does not yield to a training, so its core is not free."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    own = os.times()
    # idle and iowait are free; user, nice, system, irq, softirq and steal are not
    return sum(fields[:8]) / hz, (fields[3] + (fields[4] if len(fields) > 4 else 0)) / hz, own.user + own.system


def others_busy(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """How many cores work other than this process kept busy between two samples."""
    total, idle, own = (b - a for a, b in zip(before, after))
    if total <= 0:
        return 0.0
    cores = os.cpu_count() or 1
    wall = total / cores  # seconds that passed, as /proc/stat counts them
    return min(float(cores), max(0.0, (total - idle - own) / wall))


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores other work keeps busy now (niced or not; this process's own work left out), sampled from
    /proc/stat over `seconds` (0 where /proc/stat is not readable)."""
    first = cpu_sample()
    time.sleep(seconds)
    return others_busy(first, cpu_sample())


def free_threads(busy: float) -> int:
    """Threads for the cores `busy` leaves free: at least one, never more than torch's own setting (OMP_NUM_THREADS).
    Two OpenMP threads with one of their cores taken wait on each other at every barrier: on 2 cores a training then
    ran 4.5-24x slower instead of 2x (docs/speed.md). One thread too few costs at most that core's share, so a core
    counts as taken from a quarter of it busy on: a competitor that arrived halfway through a window is seen in that
    window, not only in the next."""
    return min(DEFAULT_THREADS, max(1, (os.cpu_count() or 1) - max(0, math.ceil(busy - TAKEN_FROM))))


def threads_for_free_cores() -> int:
    """torch threads for a pass that shares the machine, from the cores other work leaves free now."""
    busy = busy_cores()
    threads = free_threads(busy)
    if threads < DEFAULT_THREADS:
        log.info(f"training on {threads} thread(s): other work keeps {busy:.1f} of the {os.cpu_count()} cores busy")
    return threads


class ThreadGovernor:
    """Decides a training's threads again from what other work did since its last check (two /proc/stat samples,
    so a check costs no waiting): when an epoch begins, every `every_s` seconds of training, and at once after a
    step that took SLOW_STEP times the median of the last ones. Two threads with one core taken run many times
    slower (one MiniLM epoch took 24x its quiet time beside another session's loop, benchmarks/busy.py), so work
    that arrives while the model loads is seen before the first step, and a slow step is taken for work that arrived
    meanwhile rather than waited out. `fixed` (config `num_threads`) turns it off."""

    def __init__(self, fixed: int = 0, every_s: float = 1.0, sample=cpu_sample, clock=time.monotonic):
        self.fixed, self.every_s, self.sample, self.clock = fixed, every_s, sample, clock
        self.threads = fixed or threads_for_free_cores()
        torch.set_num_threads(self.threads)
        self.changes: list[dict] = []  # what the run's log records: when and why the threads changed
        self._last, self._at = self.sample(), self.clock()
        self._step_at, self._recent = None, collections.deque(maxlen=20)  # the last steps' durations

    def begin(self) -> int:
        """Called as an epoch begins: the threads for what other work did since the last check (loading the model,
        the last validation), then the epoch's steps are timed from here."""
        if self.fixed:
            return self.threads
        now_t = self.clock()
        if now_t - self._at >= MIN_WINDOW:
            self._check(now_t, "")
        self._step_at = now_t
        return self.threads

    def step(self) -> int:
        """Called once a training step; every `every_s` seconds, or after a slow step, the threads for the cores
        left free."""
        if self.fixed:
            return self.threads
        now_t = self.clock()
        if self._step_at is None:  # steps without begin(): the first one only starts the timing
            self._step_at = now_t
            return self.threads
        took, self._step_at = now_t - self._step_at, now_t
        slow = len(self._recent) >= 5 and took > SLOW_STEP * sorted(self._recent)[len(self._recent) // 2]
        self._recent.append(took)
        window = now_t - self._at
        if window >= self.every_s or (slow and window >= MIN_WINDOW):
            self._check(now_t, f" (a step took {took:.2f} s)" if slow else "")
        return self.threads

    def _check(self, now_t: float, why: str) -> None:
        now = self.sample()
        busy = others_busy(self._last, now)
        self._last, self._at = now, now_t
        threads = free_threads(busy)
        if threads != self.threads:
            log.info(
                f"threads {self.threads} -> {threads}: other work keeps {busy:.1f} of the {os.cpu_count()} cores "
                f"busy{why}"
            )
            self.changes.append({"threads": threads, "others_busy": round(busy, 2)})
            self.threads = threads
            self._recent.clear()  # step times at the old thread count say nothing of the new
            torch.set_num_threads(threads)
