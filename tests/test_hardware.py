"""The machine a pass runs on: precision by the CPU's native arithmetic, threads by the cores other work leaves free
(decided again while a training runs, with another session's work, niced or not, counted as busy)."""

from __future__ import annotations

import os
import pytest
import torch

from emotionlib import hardware as H


def test_auto_precision_follows_the_hardware():
    assert H.resolve_precision("no") == "no" and H.resolve_precision("bf16") == "bf16"
    native = (
        (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        and torch.backends.mkldnn.is_available()
        and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
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
    for busy, threads in ((0.0, 2), (0.2, 2), (0.4, 1), (1.0, 1), (1.9, 1), (2.0, 1)):
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


class FakeMachine:
    """Two cores whose /proc/stat samples and clock a test scripts: `advance` lets `seconds` pass with `others` and
    `own` cores busy; `governor` makes a ThreadGovernor that reads them."""

    def __init__(self):
        self.now, self.samples = 0.0, [(0.0, 0.0, 0.0)]

    def advance(self, seconds: float, others: float, own: float) -> None:
        total, idle, mine = self.samples[-1]
        self.samples.append((total + 2 * seconds, idle + (2 - others - own) * seconds, mine + own * seconds))
        self.now += seconds

    def governor(self, fixed: int = 0) -> H.ThreadGovernor:
        return H.ThreadGovernor(fixed, every_s=10.0, sample=lambda: self.samples[-1], clock=lambda: self.now)


@pytest.fixture
def machine(monkeypatch):
    """A quiet two-core machine (FakeMachine); torch's thread count is restored afterwards."""
    monkeypatch.setattr(H, "DEFAULT_THREADS", 2)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(H, "busy_cores", lambda seconds=0.2: 0.0)  # quiet when the training starts
    before = torch.get_num_threads()
    yield FakeMachine()
    torch.set_num_threads(before)


def test_the_governor_decides_the_threads_again_as_other_work_starts_and_stops(machine):
    """A fake load: /proc/stat samples scripted for two cores; the governor checks as an epoch begins and every 10 s
    of its clock."""
    gov = machine.governor()
    assert gov.threads == 2 and torch.get_num_threads() == 2
    machine.advance(30, others=1.0, own=1.0)  # loading the model while another session's job runs
    assert gov.begin() == 1 and torch.get_num_threads() == 1  # seen before the first step, not after it
    machine.advance(11, others=0.0, own=1.0)  # the job ended during the first (long) step
    assert gov.step() == 2 and torch.get_num_threads() == 2
    machine.advance(5, others=0.0, own=2.0)
    assert gov.step() == 2  # not yet time to check
    machine.advance(6, others=1.0, own=1.0)  # another process starts after the training did
    assert gov.step() == 1 and torch.get_num_threads() == 1
    machine.advance(11, others=1.0, own=1.0)
    assert gov.step() == 1
    machine.advance(11, others=0.0, own=1.0)  # it stopped: both cores again
    assert gov.step() == 2 and torch.get_num_threads() == 2
    assert [c["threads"] for c in gov.changes] == [1, 2, 1, 2]
    machine.advance(0.1, others=1.0, own=1.0)
    assert gov.begin() == 2  # a window too short to measure (ticks of 10 ms) is not checked
    fixed = machine.governor(1)
    machine.advance(11, others=0.0, own=1.0)
    assert fixed.begin() == 1 and fixed.step() == 1  # num_threads set: never changed


def test_a_core_counts_as_taken_from_a_quarter_of_it_busy(monkeypatch):
    """One thread too few costs a core's share; two threads on one free core cost many times more: a competitor seen
    for part of a window takes its core."""
    monkeypatch.setattr(H, "DEFAULT_THREADS", 2)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 2)
    assert [H.free_threads(b) for b in (0.0, 0.2, 0.3, 1.0, 1.2, 1.3, 2.0)] == [2, 2, 1, 1, 1, 1, 1]
    monkeypatch.setattr(H, "DEFAULT_THREADS", 1)  # never more than torch's own setting
    assert H.free_threads(0.0) == 1


def test_a_step_many_times_slower_than_the_last_ones_is_checked_at_once(machine):
    """A competitor arrives mid-window: the step it slows is checked then, not when the 10 s window ends; a slow step
    over a window too short to measure is not."""
    gov = machine.governor()
    gov.step()  # the first step starts the timing of steps
    for _ in range(10):  # quiet steps of 0.1 s
        machine.advance(0.1, others=0.0, own=2.0)
        assert gov.step() == 2
    machine.advance(0.15, others=0.0, own=2.0)  # a longer batch, not slow: no check
    assert gov.step() == 2
    machine.advance(2.4, others=1.0, own=1.0)  # the competitor arrives: this step took 24x the others
    assert gov.step() == 1 and torch.get_num_threads() == 1  # 3.55 s into a 10 s window
    assert gov.changes == [{"threads": 1, "others_busy": round(2.4 / 3.55, 2)}]

    quick = machine.governor()
    quick.step()
    for _ in range(6):
        machine.advance(0.005, others=0.0, own=2.0)
        quick.step()
    machine.advance(0.1, others=1.0, own=1.0)  # 20x the steps before it, but the window is 0.13 s: ticks, not load
    assert quick.step() == 2 and quick.changes == []


def test_openmp_waits_briefly_unless_the_user_said_otherwise():
    """emotionlib sets libgomp's spin count before torch loads (a busy machine, docs/speed.md); a user's own value,
    and the count that a process importing torch first got, are what provenance records."""
    import subprocess
    import sys

    code = (
        "import emotionlib, os, torch; from emotionlib.provenance import hardware; print(hardware()['gomp_spincount'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-1] == "30000"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env | {"GOMP_SPINCOUNT": "7"}, check=True
    )
    assert out.stdout.split()[-1] == "7"
    first = "import torch, emotionlib; from emotionlib.provenance import hardware; print(hardware()['gomp_spincount'])"
    out = subprocess.run([sys.executable, "-c", first], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-1] == "None"  # torch first: libgomp read its default, and that is what is recorded
