"""Where the time goes: one training epoch and one `predict`, under the torch profiler, split into phases.

    python benchmarks/profile_phases.py --model minilm --out bench      # the quick profile, about 3 min

Training (`emotionlib.train.train`, one epoch of the quick profile on --lang's training part, nothing skipped): the
texts' tokenisation (timed around the dataset's construction, which tokenises once), and inside the epoch the
DataLoader's batches (sampling and collation), the forward pass with the loss, the backward pass, the optimiser
(clipping, AdamW, schedule) and the rest of the loop (Python: progress bar, loss bookkeeping). Predict
(`Classifier.predict_proba` on --lang's test file): tokenisation, collation, forward, the rest. The phases are the
`record_function` labels the loop and `batched_proba` carry; the profiler adds a little to each op, so the shares
are the figure to read and the wall times are those of the profiled run. Writes <out>/profile_phases.{json,md}.

With --peer-rows N (as `make bench` runs it): one epoch of our loop and one of the Hugging Face Trainer
(benchmarks/levers.py's: the same encoder, head, loss, batch, schedule, length-grouped sampling) on the first N
rows of the training part, each under the profiler, with their self time by operator side by side: where the
peer's time and ours differ. Ours counts only the ops under the loop's `train:` labels (not its validation).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # levers.py: the Trainer as the peer

import emotionlib  # noqa: E402
from emotionlib import data as D  # noqa: E402
from emotionlib.split import prepare_data, training_parts  # noqa: E402
from emotionlib import dataset as DS  # noqa: E402
from emotionlib.config import load_config  # noqa: E402
from emotionlib.model import load_tokenizer  # noqa: E402
from emotionlib.encoders import resolve_encoder  # noqa: E402
from emotionlib.runs import RunLayout, atomic_write_text, make_dir, write_json  # noqa: E402
from emotionlib.provenance import provenance  # noqa: E402
from emotionlib.sampling import EpochSampler  # noqa: E402
from emotionlib.train import train  # noqa: E402

LOADER = "enumerate(DataLoader)"  # the profiler's own label of a DataLoader's next batch


def labelled_seconds(prof) -> dict[str, float]:
    """Seconds under each `train:`/`predict:` label and the DataLoader's, summed over their occurrences."""
    out: dict[str, float] = defaultdict(float)
    for e in prof.events():
        name = "train:batches" if e.name.startswith(LOADER) else e.name
        if name.startswith(("train:", "predict:")):
            out[name] += e.time_range.elapsed_us() / 1e6
    return dict(out)


def op_seconds(prof, within: str | None = None) -> dict[str, float]:
    """Self CPU seconds by operator; with `within`, only those of ops run under a label that starts with it."""
    out: dict[str, float] = defaultdict(float)
    for e in prof.events():
        if e.name.startswith(("train:", "predict:", LOADER, "ProfilerStep")):
            continue
        if within is not None:
            parent = e.cpu_parent
            while parent is not None and not parent.name.startswith(within):
                parent = parent.cpu_parent
            if parent is None:
                continue
        out[e.name] += e.self_cpu_time_total / 1e6
    return dict(out)


def profile_peer(model: str, lang: str, rows: int, work: Path) -> dict:
    """One epoch of our loop and one of the Trainer (benchmarks/levers.py's, length-grouped) on the same rows,
    each under the profiler: self seconds by operator, and the epoch's wall time."""
    import levers

    levers.set_model(model, 0)
    cfg = load_config(
        "quick",
        {
            **levers.BASE,
            "languages": [lang],
            "max_train_rows": rows,
            "epochs": 1,
            "patience": 0,
            "runs_dir": str(work),
            "run_id": "ours",
        },
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run = train(cfg)
    ours = json.loads(RunLayout(run).train_log.read_text(encoding="utf-8").splitlines()[0])["train_seconds"]
    ops = {"ours": op_seconds(prof, within="train:")}
    trainer = levers.make_trainer({}, lang, rows, work / "peer")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        peer = trainer.train().metrics["train_runtime"]
    ops["trainer"] = op_seconds(prof)
    return {"rows": rows, "epoch_seconds": {"ours": ours, "trainer": round(peer, 2)}, "ops": ops}


def peer_table(peer: dict, top: int = 14) -> list[str]:
    ours, theirs = peer["ops"]["ours"], peer["ops"]["trainer"]
    names = sorted(set(ours) | set(theirs), key=lambda k: -max(ours.get(k, 0), theirs.get(k, 0)))
    walls = peer["epoch_seconds"]
    rows = [
        f"| one epoch, {peer['rows']} rows, self seconds by operator | ours | Trainer | Trainer - ours |",
        "|---|---:|---:|---:|",
    ]
    rows += [
        f"| {k} | {ours.get(k, 0):.2f} | {theirs.get(k, 0):.2f} | {theirs.get(k, 0) - ours.get(k, 0):+.2f} |"
        for k in names[:top]
    ]
    rest = {who: sum(v for k, v in ops.items() if k not in names[:top]) for who, ops in peer["ops"].items()}
    rows.append(
        f"| other operators | {rest['ours']:.2f} | {rest['trainer']:.2f} | {rest['trainer'] - rest['ours']:+.2f} |"
    )
    outside = {who: walls[who] - sum(peer["ops"][who].values()) for who in walls}
    rows.append(
        f"| outside operators (Python, data) | {outside['ours']:.2f} | {outside['trainer']:.2f} | "
        f"{outside['trainer'] - outside['ours']:+.2f} |"
    )
    rows.append(
        f"| epoch wall time | {walls['ours']:.2f} | {walls['trainer']:.2f} | "
        f"{walls['trainer'] - walls['ours']:+.2f} |"
    )
    return rows + [""]


def padding_share(lengths: list[int], order: list[int], batch_size: int) -> float:
    """The share of the computed token positions that are padding, for batches of `order` padded to their longest."""
    padded = real = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / padded


def profile_training(cfg) -> dict:
    """One epoch under the profiler; its phases, with the epoch's own wall time from the training log."""
    layout = RunLayout(cfg.run_dir)
    prepare_data(cfg, layout)
    tokenizer = load_tokenizer(resolve_encoder(cfg.model))
    train_parts, _ = training_parts(cfg, layout)
    ex = DS.Examples.from_splits(train_parts, train_parts[0].labels)
    t0 = time.perf_counter()
    ds = DS.EmotionDataset(ex, tokenizer, cfg.max_length, cfg.pad_to_max_length)  # what train() does, timed alone
    tokenise = time.perf_counter() - t0
    # what a token budget per batch could save at most: the padding in the epoch's batches as the loop makes them
    padding = padding_share(
        ds.lengths, list(EpochSampler(ds.lengths, cfg.batch_size, cfg.seed, cfg.group_by_length)), cfg.batch_size
    )
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run = train(cfg)
    wall = time.perf_counter() - t0
    epoch = json.loads(RunLayout(run).train_log.read_text(encoding="utf-8").splitlines()[0])
    seconds = labelled_seconds(prof)
    loop = {k: seconds.get(f"train:{k}", 0.0) for k in ("batches", "forward", "backward", "optimiser")}
    loop["rest of the loop (Python)"] = max(epoch["train_seconds"] - sum(loop.values()), 0.0)
    return {
        "run": str(run),
        "wall_seconds": round(wall, 2),
        "epoch_seconds": epoch["train_seconds"],
        "tokenise_seconds": round(tokenise, 3),
        "rows": len(ex.texts),
        "padding_share": round(padding, 4),
        "group_by_length": cfg.group_by_length,
        "phases": {k: round(v, 3) for k, v in loop.items()},
    }


def profile_predict(run: Path, texts: list[str]) -> dict:
    clf = emotionlib.load(run)
    clf.predict_proba(texts[:64])  # warm-up
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        clf.predict_proba(texts)
    wall = time.perf_counter() - t0
    seconds = labelled_seconds(prof)
    phases = {k: seconds.get(f"predict:{k}", 0.0) for k in ("tokenise", "collate", "forward")}
    phases["rest (Python)"] = max(wall - sum(phases.values()), 0.0)
    return {
        "wall_seconds": round(wall, 3),
        "texts": len(texts),
        "texts_per_second": round(len(texts) / wall, 1),
        "phases": {k: round(v, 3) for k, v in phases.items()},
    }


def table(title: str, phases: dict[str, float], total: float) -> list[str]:
    rows = [f"| {title} | seconds | share |", "|---|---:|---:|"]
    rows += [f"| {k} | {v:.2f} | {100 * v / total:.1f}% |" for k, v in phases.items()]
    return rows + [f"| total | {total:.2f} | 100% |", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--lang", default="eng")
    ap.add_argument(
        "--peer-rows",
        type=int,
        default=0,
        help="also profile one epoch of our loop and one of the Trainer on this many rows (0: no)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            args.profile,
            {
                "model": args.model,
                "languages": [args.lang],
                "epochs": 1,
                "patience": 0,
                "runs_dir": tmp,
                "run_id": "profile",
            },
        )
        training = profile_training(cfg)
        test = D.source_for(cfg).load("test", args.lang)
        predict = profile_predict(Path(training["run"]), test.texts)
        peer = profile_peer(args.model, args.lang, args.peer_rows, Path(tmp) / "peer") if args.peer_rows else None
    result = {
        "model": args.model,
        "profile": args.profile,
        "lang": args.lang,
        "training": training,
        "predict": predict,
        "peer": peer,
        "threads": torch.get_num_threads(),
        "provenance": provenance(),
    }
    make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
    write_json(args.out / "profile_phases.json", result)
    md = [
        f"# Where the time goes: {args.model}, {args.profile} profile, {args.lang}",
        "",
        f"Tokenising the {training['rows']} training texts once: {training['tokenise_seconds']:.2f} s. Padding in "
        f"the epoch's batches (group_by_length: {training['group_by_length']}): "
        f"{100 * training['padding_share']:.1f}% of the token positions computed.",
        "",
        *table("one training epoch", training["phases"], training["epoch_seconds"]),
        *table(
            f"predict, {predict['texts']} texts ({predict['texts_per_second']} texts/s)",
            predict["phases"],
            predict["wall_seconds"],
        ),
        *(peer_table(peer) if peer else []),
    ]
    atomic_write_text(args.out / "profile_phases.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
