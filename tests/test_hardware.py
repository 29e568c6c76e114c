"""The machine a pass runs on: precision by the CPU's native arithmetic, threads by the cores other work leaves free
(decided again while a training runs, with another session's work, niced or not, counted as busy)."""
from __future__ import annotations

import os
import pytest
import torch

from emotionlib import hardware as H


def test_auto_precision_follows_the_hardware():
    assert H.resolve_precision("no") == "no" and H.resolve_precision("bf16") == "bf16"
    native = (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()) and \
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if not torch.cuda.is_available():
        assert H.resolve_precision("auto") == ("bf16" if native else "no")


def test_auto_precision_wants_native_bf16_not_avx512_alone(monkeypatch):
    """A CPU without native bf16 (AVX-512 alone, where oneDNN converts) computes in fp32."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)  # oneDNN converts on AVX-512
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert H.resolve_precision("auto") == "no"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert H.resolve_precision("auto") == "bf16"


def test_training_threads_follow_the_cores_other_work_leaves_free(monkeypatch):
    monkeypatch.setattr(H, "DEFAULT_THREADS", 2)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    for busy, threads in ((0.0, 2), (0.4, 2), (1.0, 1), (1.9, 1), (2.0, 1)):
        monkeypatch.setattr(H, "busy_cores", lambda busy=busy: busy)
        assert H.threads_for_free_cores() == threads
    monkeypatch.setattr(H, "DEFAULT_THREADS", 1)  # OMP_NUM_THREADS=1 is never raised
    monkeypatch.setattr(H, "busy_cores", lambda: 0.0)
    assert H.threads_for_free_cores() == 1


def test_others_busy_leaves_this_process_out_and_counts_niced_work(monkeypatch):
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    # two cores for 10 s: 20 s of core time; 4 s idle; this process used 9 s; the other 7 s (niced or not) is others'
    assert H.others_busy((0.0, 0.0, 0.0), (20.0, 4.0, 9.0)) == pytest.approx(0.7)
    assert H.others_busy((0.0, 0.0, 0.0), (20.0, 20.0, 0.0)) == 0.0
    assert H.others_busy((5.0, 1.0, 1.0), (5.0, 1.0, 1.0)) == 0.0  # no time passed


def test_niced_work_on_proc_stat_counts_as_busy(monkeypatch):
    """/proc/stat's first line: user nice system idle iowait irq softirq steal. A niced process of another session
    does not yield to the training under the kernel's autogroup, so its time (the nice column) is busy, not free."""
    lines = iter(["cpu  100 0 0 900 0 0 0 0 0 0\n", "cpu  100 500 0 1400 0 0 0 0 0 0\n"])
    monkeypatch.setattr(H.Path, "read_text", lambda self, *a, **k: next(lines))
    monkeypatch.setattr(H.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    own = H.os.times()
    monkeypatch.setattr(H.os, "times", lambda: own)  # this process used nothing meanwhile
    first, second = H.cpu_sample(), H.cpu_sample()
    assert H.others_busy(first, second) == pytest.approx(1.0)  # 5 s niced of 10 s on two cores: one core busy


def test_busy_cores_reads_this_machine():
    assert 0.0 <= H.busy_cores(0.05) <= (os.cpu_count() or 1) + 1e-6


def test_the_governor_decides_the_threads_again_as_other_work_starts_and_stops(monkeypatch):
    """A fake load: /proc/stat samples scripted for two cores; the governor checks every 10 s of its clock."""
    monkeypatch.setattr(H, "DEFAULT_THREADS", 2)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(H, "busy_cores", lambda seconds=0.2: 0.0)  # quiet when the training starts
    now, samples = [0.0], [(0.0, 0.0, 0.0)]

    def advance(seconds: float, others: float, own: float) -> None:
        """`seconds` pass with `others` and `own` cores busy."""
        total, idle, mine = samples[-1]
        samples.append((total + 2 * seconds, idle + (2 - others - own) * seconds, mine + own * seconds))
        now[0] += seconds

    before = torch.get_num_threads()
    try:
        gov = H.ThreadGovernor(0, every_s=10.0, sample=lambda: samples[-1], clock=lambda: now[0])
        assert gov.threads == 2 and torch.get_num_threads() == 2
        advance(30, others=1.0, own=1.0)  # loading the model, beside a short job that then ends
        assert gov.step() == 2  # the first step: the first window starts here, not at loading
        advance(5, others=0.0, own=2.0)
        assert gov.step() == 2  # not yet time to check
        advance(6, others=1.0, own=1.0)  # another process starts after the training did
        assert gov.step() == 1 and torch.get_num_threads() == 1
        advance(11, others=1.0, own=1.0)
        assert gov.step() == 1
        advance(11, others=0.0, own=1.0)  # it stopped: both cores again
        assert gov.step() == 2 and torch.get_num_threads() == 2
        assert [c["threads"] for c in gov.changes] == [1, 2]
        fixed = H.ThreadGovernor(1, every_s=10.0, sample=lambda: samples[-1], clock=lambda: now[0])
        advance(11, others=0.0, own=1.0)
        assert fixed.step() == 1  # num_threads set: never changed
    finally:
        torch.set_num_threads(before)
