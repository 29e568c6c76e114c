"""A busy machine must not collapse training: one epoch quiet, and beside one competing process in another session
(`setsid`, as another terminal's work is: under the kernel's autogroup its nice value does not make it yield to the
training), niced and not, started before the training and a few seconds after it; with the threads fixed at every
core, and with the default (hardware.ThreadGovernor: decided at the start and again every second of training).

    python benchmarks/busy.py --rows 1000 --reps 1 --out bench

Each epoch is a fresh `python -m emotionlib train` process (quick profile, MiniLM, one epoch on the first --rows
English training rows), timed by its own train_log (train_seconds). The competitor is a pure-Python loop, as a user's
background job would be. Nothing else may run. Writes <out>/busy.{json,md}. Goal: every case with the default
threads within 2.2x the quiet epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emotionlib.runs import make_dir, write_json
from emotionlib.provenance import provenance


def epoch_seconds(
    rows: int, threads: int, work: Path, tag: str, hog: list[str] | None = None, hog_after: float = 0.0
) -> tuple[float, list[int]]:
    """One epoch's train_seconds (and the threads it ended with), beside `hog` started in its own session
    `hog_after` seconds after the training (0: before it)."""
    run_id = f"busy-{tag}"
    sets = [
        f"runs_dir={work}",
        f"run_id={run_id}",
        "epochs=1",
        f"max_train_rows={rows}",
        f"num_threads={threads}",
        "patience=0",
    ]
    competitor = None
    if hog and not hog_after:
        competitor = subprocess.Popen(hog, start_new_session=True)
        time.sleep(1.0)
    train = subprocess.Popen(
        [sys.executable, "-m", "emotionlib", "train", "--config", "quick", "--set", *sets],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if hog and hog_after:
            time.sleep(hog_after)
            competitor = subprocess.Popen(hog, start_new_session=True)
        _, err = train.communicate()
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    if train.returncode != 0:
        raise SystemExit(err[-2000:])
    log = [json.loads(line) for line in (work / run_id / "train_log.jsonl").read_text().splitlines()]
    return float(log[0]["train_seconds"]), [int(e.get("threads", 0)) for e in log]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--after", type=float, default=5.0, help="seconds into the training the late competitor starts")
    ap.add_argument("--only", nargs="*", default=None, help="run only the cases whose name holds one of these words")
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    loop = [sys.executable, "-c", "while True: pass"]
    hogs = {"niced": ["nice", "-n", "19", *loop], "not niced": loop}
    cases = [("quiet, default threads", None, 0, 0.0)]
    for kind in hogs:
        cases += [
            (f"{kind}, started before, every core (fixed)", kind, cores, 0.0),
            (f"{kind}, started before, default threads", kind, 0, 0.0),
            (f"{kind}, started {args.after:g} s after, default threads", kind, 0, args.after),
        ]
    if args.only:  # the quiet case stays: every figure is a ratio to it
        cases = [c for c in cases if c[0].startswith("quiet") or any(w in c[0] for w in args.only)]
    times: dict[str, list[float]] = {name: [] for name, *_ in cases}
    threads: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="emotionlib-busy-") as tmp:
        for rep in range(args.reps):
            for n, (name, kind, fixed, after) in enumerate(cases):
                seconds, used = epoch_seconds(args.rows, fixed, Path(tmp), f"{n}-{rep}", hogs.get(kind), after)
                times[name].append(seconds)
                threads[name] = used
                print(f"{name}: {seconds:.1f} s (threads at the epoch's end: {used})", flush=True)
    quiet = statistics.median(times["quiet, default threads"])
    rows = [
        {
            "case": k,
            "seconds": round(statistics.median(v), 1),
            "x_quiet": round(statistics.median(v) / quiet, 2),
            "threads_at_end": threads[k],
        }
        for k, v in times.items()
    ]
    make_dir(args.out, "bench")
    write_json(
        args.out / "busy.json",
        provenance({"rows": rows, "train_rows": args.rows, "reps": args.reps, "late_start_s": args.after}),
    )
    cpu = provenance()["hardware"]["cpu"]
    lines = [
        f"One MiniLM epoch on {args.rows} rows, {cpu}, {cores} cores; competitor: one pure-Python loop in its own "
        "session (setsid)",
        "",
        "| case | epoch seconds | x quiet |",
        "|---|---|---|",
    ]
    lines += [f"| {r['case']} | {r['seconds']} | {r['x_quiet']} |" for r in rows]
    text = "\n".join(lines) + "\n"
    from emotionlib.runs import atomic_write_text

    atomic_write_text(args.out / "busy.md", text)
    print(text)


if __name__ == "__main__":
    main()
