"""A busy machine must not collapse training: one epoch quiet, and beside one competing process (niced, then not)
on another core, with the threads fixed at every core (before) and chosen from the cores left free (after, the
default: a niced process yields to the training, so its core counts as free).

    python benchmarks/busy.py --rows 320 --reps 1 --out bench

Each epoch is a fresh `python -m emotionlib train` process (quick profile, MiniLM, one epoch on the first --rows
English training rows), timed by its own train_log (train_seconds). The competitor is a pure-Python loop, as a user's
background job would be. Nothing else may run. Writes <out>/busy.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from emotionlib.runs import make_dir, provenance, write_json


def epoch_seconds(rows: int, threads: int, work: Path, tag: str) -> float:
    run_id = f"busy-{tag}"
    sets = [f"runs_dir={work}", f"run_id={run_id}", "epochs=1", f"max_train_rows={rows}", f"num_threads={threads}",
            "patience=0"]
    out = subprocess.run([sys.executable, "-m", "emotionlib", "train", "--config", "quick", "--set", *sets],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    log = [json.loads(line) for line in (work / run_id / "train_log.jsonl").read_text().splitlines()]
    return float(log[0]["train_seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=320)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    times: dict[str, list[float]] = {"quiet, default threads": []}
    for hog in ("niced", "not niced"):
        times[f"{hog} competitor, every core (before)"] = []
        times[f"{hog} competitor, free cores (after, default)"] = []
    with tempfile.TemporaryDirectory(prefix="emotionlib-busy-") as tmp:
        work = Path(tmp)
        for rep in range(args.reps):
            times["quiet, default threads"].append(epoch_seconds(args.rows, 0, work, f"quiet{rep}"))
            for kind, prefix in (("niced", ["nice", "-n", "10"]), ("not niced", [])):
                hog = subprocess.Popen([*prefix, sys.executable, "-c", "while True: pass"])
                try:
                    tag = kind.replace(" ", "")
                    times[f"{kind} competitor, every core (before)"].append(
                        epoch_seconds(args.rows, cores, work, f"all-{tag}{rep}"))
                    times[f"{kind} competitor, free cores (after, default)"].append(
                        epoch_seconds(args.rows, 0, work, f"free-{tag}{rep}"))
                finally:
                    hog.kill()
    quiet = statistics.median(times["quiet, default threads"])
    rows = [{"case": k, "seconds": round(statistics.median(v), 1), "x_quiet": round(statistics.median(v) / quiet, 2)}
            for k, v in times.items()]
    make_dir(args.out, "bench")
    write_json(args.out / "busy.json", provenance({"rows": rows, "train_rows": args.rows, "reps": args.reps}))
    cpu = provenance()["hardware"]["cpu"]
    lines = [f"One MiniLM epoch on {args.rows} rows, {cpu}, {cores} cores; competitor: one pure-Python loop", "",
             "| case | epoch seconds | x quiet |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['seconds']} | {r['x_quiet']} |" for r in rows]
    (args.out / "busy.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
