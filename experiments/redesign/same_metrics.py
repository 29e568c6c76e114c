"""Does a change of the code change a result? Profiles trained and evaluated with two checkouts of emotionlib on the
same machine, with the same settings and one fixed thread; then every number of metrics.json and train_log.jsonl,
and the saved weights, compared exactly.

    git worktree add --detach /tmp/before 0f1134c
    python experiments/redesign/same_metrics.py --before /tmp/before --after . --out /tmp/same

(figures: docs/design.md, "The redesign changed no result")
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

SKIP = ("seconds", "per_second", "rss", "wall", "threads")  # timings and the machine's state, not results


def numbers(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def read(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(path.read_text())


def differences(a: Path, b: Path) -> dict[str, tuple[int, list]]:
    out = {}
    for name in ("metrics.json", "train_log.jsonl"):
        na = {p: v for p, v in numbers(read(a / name)) if not any(s in p for s in SKIP)}
        nb = {p: v for p, v in numbers(read(b / name)) if not any(s in p for s in SKIP)}
        out[name] = (len(na), [(p, na.get(p), nb.get(p)) for p in sorted(set(na) | set(nb)) if na.get(p) != nb.get(p)])
    return out


def train_and_evaluate(tree: Path, profile: str, run_id: str, runs: Path) -> Path:
    env = os.environ | {"PYTHONPATH": str(tree)}
    run = runs / run_id
    if not (run / "metrics.json").is_file():
        sets = [f"run_id={run_id}", f"runs_dir={runs}", "num_threads=1", "seed=42"]
        for cmd in (["train", "--config", profile, "--set", *sets], ["evaluate", "--run", str(run)]):
            subprocess.run([sys.executable, "-m", "emotionlib", *cmd], cwd=tree, env=env, check=True)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the code before the change")
    ap.add_argument("--after", type=Path, required=True, help="a checkout of the code after it")
    ap.add_argument("--profiles", nargs="+", default=["smoke", "quick"])
    ap.add_argument("--out", type=Path, required=True, help="where the runs go")
    args = ap.parse_args()
    same = True
    for profile in args.profiles:
        a, b = (
            train_and_evaluate(t.resolve(), profile, f"{profile}-{tag}", args.out.resolve() / "runs")
            for t, tag in ((args.before, "before"), (args.after, "after"))
        )
        for name, (n, diff) in differences(a, b).items():
            print(f"{profile} {name}: {n} numbers, {len(diff)} differ", *diff[:10], sep="\n  ")
            same &= not diff
        weights = filecmp.cmp(a / "model" / "model.safetensors", b / "model" / "model.safetensors", shallow=False)
        print(f"{profile} weights: {'byte for byte the same' if weights else 'DIFFERENT'}")
        same &= weights
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
