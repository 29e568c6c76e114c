"""`make bench`: training throughput, peak memory and dev macro-F1 of three loops on the quick profile's encoder
(English train), plus `predict` (PyTorch and ONNX Runtime) and LIME timings. Each figure is the median of --reps
runs, each in its own process (so peak RSS is that run's own); the predict variants run interleaved, rep by rep,
so that a slower spell of a shared machine falls on all of them. Writes bench.json and bench.md.

  python benchmarks/bench.py                                    # everything (about 30 minutes on 2 cores)
  python benchmarks/bench.py --only predict --run runs/<run_id>  # inference only, on a trained run

  (a) seed-literal: plain PyTorch, every sequence padded to 128, shuffled batches of 16
  (b) emotionlib: emotionlib.train.train (Accelerate, dynamic padding, fused AdamW, the quick profile's settings,
      which group batches by length), and the same without length grouping
  (c) Hugging Face Trainer: the same encoder and head, batch, data, epochs, learning rate and schedule
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from emotionlib import data as D  # noqa: E402
from emotionlib.config import load_config  # noqa: E402
from emotionlib.metrics import scores  # noqa: E402
from emotionlib.model import EmotionClassifier, load_encoder, load_tokenizer  # noqa: E402
from emotionlib.encoders import resolve_encoder  # noqa: E402
from emotionlib.predict import decide, predict_proba  # noqa: E402
from emotionlib.runs import atomic_write_text, make_dir  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def english(cfg, rows: int):
    """The quick profile's train part (80/20 split, seed 42 whatever the training seed), its validation part,
    and the official dev file."""
    from emotionlib.split import prepare_data, training_parts

    prepare_data(cfg)  # made once in the work folder; a run made earlier keeps its split
    train_parts, val_parts = training_parts(cfg)
    tr = train_parts[0]
    if rows:
        tr = tr.subset(range(min(rows, len(tr))))
    dev = D.DataSource.resolve(cfg.data_dir).load("dev", "eng")
    return tr, (dev, val_parts[0])


def quality(model, tok, sets, max_length) -> dict:
    """Macro-F1 at threshold 0.5 on the dev file (115 rows) and on the validation part (553 rows)."""
    out = {}
    for name, d in zip(("dev_macro_f1", "val_macro_f1"), sets):
        out[name] = scores(d.y, decide(predict_proba(model, tok, d.texts, max_length)), d.labels)["macro_f1"]
    return out


def schedule(optimizer, cfg, steps):
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)


def run_seed_loop(cfg, tr, dev) -> dict:
    """The seed's loop as written: fixed padding to 128, model.train(), zero_grad, forward, backward, step."""
    folder = resolve_encoder(cfg.model)
    tok = load_tokenizer(folder)
    torch.manual_seed(cfg.seed)
    model = EmotionClassifier(load_encoder(folder), len(tr.labels))
    enc = tok(tr.texts, truncation=True, max_length=128, padding="max_length", return_tensors="pt")
    ds = torch.utils.data.TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(tr.y, dtype=torch.float))
    dl = torch.utils.data.DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = schedule(opt, cfg, len(dl) * cfg.epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for ids, att, y in dl:
            opt.zero_grad()
            loss = loss_fn(model(ids, att), y)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "examples_per_second": len(ds) * cfg.epochs / seconds,
        **quality(model.eval(), tok, dev, 128),
    }


def run_emotionlib(cfg, tr, dev, workdir: Path) -> dict:
    from emotionlib.model import load_model
    import shutil

    from emotionlib.runs import RunLayout, read_json
    from emotionlib.train import train

    run = cfg.replace(runs_dir=str(workdir), run_id="bench", patience=0)
    split = RunLayout(run.run_dir).split  # the same split as the other loops, whatever the seed
    split.parent.mkdir(parents=True)
    shutil.copy(RunLayout(Path(cfg.runs_dir) / "split").split, split)
    run_dir = train(run)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    seconds = sum(e["train_seconds"] for e in log)
    model, tok, meta = load_model(run_dir / "model")
    return {
        "seconds": seconds,
        "examples_per_second": read_json(run_dir / "provenance.json")["n_train"] * len(log) / seconds,
        **quality(model, tok, dev, meta["max_length"]),
        "run_dir": str(run_dir),
    }


class _TrainerModel(torch.nn.Module):
    """EmotionClassifier with the loss inside forward, as Trainer expects."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask, labels=None):
        logits = self.inner(input_ids, attention_mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def run_trainer(cfg, tr, dev, workdir: Path) -> dict:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    folder = resolve_encoder(cfg.model)
    tok = load_tokenizer(folder)
    torch.manual_seed(cfg.seed)
    model = _TrainerModel(EmotionClassifier(load_encoder(folder), len(tr.labels)))
    enc = tok(tr.texts, truncation=True, max_length=cfg.max_length)
    ds = [
        {"input_ids": i, "attention_mask": a, "labels": y.astype(np.float32)}
        for i, a, y in zip(enc["input_ids"], enc["attention_mask"], tr.y)
    ]
    args = TrainingArguments(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type="linear",
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
    out = trainer.train()
    seconds = out.metrics["train_runtime"]
    return {
        "seconds": seconds,
        "examples_per_second": len(ds) * cfg.epochs / seconds,
        **quality(model.inner.eval(), tok, dev, cfg.max_length),
    }


def run_predict(run_dir: Path, quantize: bool, sort: bool, backend: str = "torch") -> dict:
    from emotionlib.model import load_model

    if backend == "onnx":
        return run_predict_onnx(run_dir)
    model, tok, meta = load_model(run_dir / "model")
    if quantize:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    src = D.DataSource.resolve()
    test, dev = src.load("test", "eng"), src.load("dev", "eng")
    predict_proba(model, tok, test.texts[:64], meta["max_length"])  # warm-up
    t0 = time.perf_counter()
    predict_proba(model, tok, test.texts, meta["max_length"], batch_size=64, sort_by_length=sort)
    seconds = time.perf_counter() - t0
    probs = predict_proba(model, tok, dev.texts, meta["max_length"])
    return {
        "seconds": seconds,
        "examples_per_second": len(test) / seconds,
        "dev_macro_f1": scores(dev.y, decide(probs, meta["thresholds"]), dev.labels)["macro_f1"],
    }


def run_predict_onnx(run_dir: Path) -> dict:
    """The same measurement through `emotionlib.load(run, backend="onnx")` (ONNX Runtime, same batching)."""
    from emotionlib.classifier import Classifier

    clf = Classifier(run_dir, backend="onnx")  # exported under runs/<id>/onnx/ beforehand by main()
    src = D.DataSource.resolve()
    test, dev = src.load("test", "eng"), src.load("dev", "eng")
    clf.predict_proba(test.texts[:64])  # warm-up
    t0 = time.perf_counter()
    clf.predict_proba(test.texts, batch_size=64)
    seconds = time.perf_counter() - t0
    probs = clf.predict_proba(dev.texts)
    return {
        "seconds": seconds,
        "examples_per_second": len(test) / seconds,
        "dev_macro_f1": scores(dev.y, decide(probs, clf.thresholds), dev.labels)["macro_f1"],
    }


def run_lime(run_dir: Path) -> dict:
    from emotionlib.config import CASE_STUDY
    from emotionlib.interpret import explain_lime
    from emotionlib.model import load_model

    model, tok, meta = load_model(run_dir / "model")
    t0 = time.perf_counter()
    explain_lime(model, tok, CASE_STUDY, meta["labels"], meta["max_length"], num_samples=1000)
    return {"seconds": time.perf_counter() - t0}


def child(args) -> None:
    """One measurement in this process; prints one JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.profile, {"epochs": args.epochs, "group_by_length": args.group_by_length})  # None: profile
    work = Path(tempfile.mkdtemp(prefix="emotionlib-bench-", dir=args.workdir))
    if args.what in ("predict", "lime"):
        result = (
            run_predict(Path(args.run), args.quantize, not args.unsorted, args.backend)
            if args.what == "predict"
            else run_lime(Path(args.run))
        )
    else:
        # every loop trains on the same 80/20 train part; the split is made once in the work folder
        cfg = cfg.replace(runs_dir=str(work), run_id="split", max_train_rows=args.rows)
        tr, dev = english(cfg, args.rows)
        cfg = cfg.replace(seed=args.seed)  # the training seed: initialisation, batch order, dropout
        result = {"seed": run_seed_loop, "trainer": run_trainer}.get(args.what, None)
        result = (
            result(cfg, tr, dev)
            if args.what == "seed"
            else run_trainer(cfg, tr, dev, work)
            if args.what == "trainer"
            else run_emotionlib(cfg, tr, dev, work)
        )
    result["peak_rss_mb"] = peak_mb()
    result["torch_threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(result))


def one_child(base: list[str], label: str, script: str = __file__, env: dict | None = None) -> dict:
    """One measurement in a fresh process of `script --child`; its RESULT line as a dict."""
    t0 = time.time()
    out = subprocess.run([sys.executable, script, "--child", *base], capture_output=True, text=True, cwd=ROOT, env=env)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{label} failed:\n{out.stderr[-3000:]}")
    result = json.loads(line[7:])
    print(
        f"  {label}: {result.get('examples_per_second', 0):.1f} ex/s, {result['seconds']:.1f} s, "
        f"peak {result['peak_rss_mb']:.0f} MB ({time.time() - t0:.0f} s wall)",
        flush=True,
    )
    return result


def summarise(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {
        "median": {k: statistics.median(r[k] for r in runs) for k in keys},
        "runs": runs,
        **({"run_dir": runs[0]["run_dir"]} if "run_dir" in runs[0] else {}),
    }


def measure(base: list[str], reps: int, label: str) -> dict:
    return summarise([one_child(base, f"{label} rep {i + 1}/{reps}") for i in range(reps)])


PREDICT_VARIANTS = (
    ("sorted_by_length", []),
    ("unsorted", ["--unsorted"]),
    ("int8_dynamic", ["--quantize"]),
    ("onnx_runtime", ["--backend", "onnx"]),
)


def measure_predict(work: list[str], run_dir: str, reps: int) -> dict:
    """Every predict variant once per rep, interleaved, on the same trained run."""
    from emotionlib.export import ensure_onnx

    ensure_onnx(Path(run_dir))  # the export is a one-off, not part of the timing
    runs: dict[str, list] = {name: [] for name, _ in PREDICT_VARIANTS}
    for i in range(reps):
        for name, extra in PREDICT_VARIANTS:
            runs[name].append(
                one_child([*work, "--what", "predict", "--run", run_dir, *extra], f"predict {name} rep {i + 1}/{reps}")
            )
    return {name: summarise(r) for name, r in runs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    p.add_argument("--profile", default="quick")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rows", type=int, default=512, help="training rows for the throughput runs")
    p.add_argument("--throughput-epochs", type=int, default=1)
    p.add_argument("--quality-epochs", type=int, default=3, help="epochs for the dev macro-F1 runs (all rows)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--what", default="emotionlib")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--group-by-length", dest="group_by_length", action="store_true", default=None)
    p.add_argument("--no-group-by-length", dest="group_by_length", action="store_false")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quantize", action="store_true")
    p.add_argument("--unsorted", action="store_true")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--only", choices=["predict"], help="only the predict measurements, on --run")
    p.add_argument("--run", default="")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[42, 43, 44],
        help="training seeds of the quality runs of (b) and (c); the others run the first only",
    )
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    if args.child:
        return child(args)

    make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
    work = ["--profile", args.profile, "--workdir", str(args.out)]
    if args.only == "predict":
        if not args.run:
            p.error("--only predict needs --run runs/<run_id> (a model trained on English)")
        res = {
            "machine": _machine(),
            "settings": vars(args) | {"out": str(args.out)},
            "predict": measure_predict(work, args.run, args.reps),
        }
        atomic_write_text(args.out / "predict.json", json.dumps(res, indent=2))
        atomic_write_text(args.out / "predict.md", predict_table(res))
        print(predict_table(res))
        return
    tp = [*work, "--rows", str(args.rows), "--epochs", str(args.throughput_epochs)]
    q = [*work, "--rows", "0", "--epochs", str(args.quality_epochs)]
    t0 = time.time()
    res: dict = {
        "machine": _machine(),
        "settings": vars(args) | {"out": str(args.out)},
        "throughput": {},
        "quality": {},
    }
    print(f"throughput: {args.rows} rows x {args.throughput_epochs} epoch, {args.reps} reps each", flush=True)
    loops = (
        ("a_seed_literal", ["--what", "seed"]),
        ("b_emotionlib", ["--what", "emotionlib"]),
        ("b_emotionlib_without_length_grouping", ["--what", "emotionlib", "--no-group-by-length"]),
        ("c_hf_trainer", ["--what", "trainer"]),
    )
    for name, extra in loops:
        res["throughput"][name] = measure([*tp, *extra], args.reps, name)
    print(f"quality: all rows x {args.quality_epochs} epochs, training seeds {args.seeds}", flush=True)
    for name, extra in loops:
        seeds = args.seeds if name in ("b_emotionlib", "c_hf_trainer") else args.seeds[:1]  # bound the wall time
        runs = [measure([*q, *extra, "--seed", str(seed)], 1, f"{name} seed {seed}") for seed in seeds]
        res["quality"][name] = {
            "median": {k: statistics.median(r["median"][k] for r in runs) for k in runs[0]["median"]},
            "runs": [r["runs"][0] | {"seed": seed} for r, seed in zip(runs, seeds)],
            "run_dir": runs[0].get("run_dir"),
        }
    run_dir = res["quality"]["b_emotionlib"]["run_dir"]
    res["predict"] = measure_predict(work, run_dir, args.reps)
    res["lime"] = measure([*work, "--what", "lime", "--run", run_dir], args.reps, "lime")
    res["wall_seconds"] = round(time.time() - t0, 1)
    atomic_write_text(args.out / "bench.json", json.dumps(res, indent=2))
    atomic_write_text(args.out / "bench.md", table(res))
    print(table(res))


def table(res: dict) -> str:
    tp, q = res["throughput"], res["quality"]
    a = tp["a_seed_literal"]["median"]["examples_per_second"]
    c = tp["c_hf_trainer"]["median"]["examples_per_second"]
    lines = [
        f"machine: {res['machine']['cpu']}, nproc {res['machine']['nproc']}, torch {res['machine']['torch']}",
        "",
        f"| training loop | examples/s (median) | vs (a) | vs (c) | peak RSS MB | macro-F1 dev, 115 rows "
        f"({res['settings']['quality_epochs']} epochs; per seed) | macro-F1 validation part, 553 rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in tp.items():
        m = r["median"]
        runs = q[name]["runs"]
        dev = ", ".join(f"{x['dev_macro_f1']:.4f}" for x in runs)
        val = ", ".join(f"{x['val_macro_f1']:.4f}" for x in runs)
        lines.append(
            f"| {name} | {m['examples_per_second']:.1f} | {m['examples_per_second'] / a:.2f}x | "
            f"{m['examples_per_second'] / c:.2f}x | {m['peak_rss_mb']:.0f} | "
            f"median {q[name]['median']['dev_macro_f1']:.4f} ({dev}) | "
            f"median {q[name]['median']['val_macro_f1']:.4f} ({val}) |"
        )
    lines += ["", predict_table(res)]
    lines += [
        "",
        f"one LIME explanation (1,000 samples, all labels): {res['lime']['median']['seconds']:.2f} s (median)",
        f"total wall time: {res['wall_seconds']:.0f} s",
        "",
    ]
    return "\n".join(lines)


def predict_table(res: dict) -> str:
    base = res["predict"]["sorted_by_length"]["median"]["examples_per_second"]
    lines = [
        "| predict on English test (2,765 rows), batch 64 | examples/s (median) | vs PyTorch sorted | "
        "dev macro-F1 (tuned thresholds) |",
        "|---|---|---|---|",
    ]
    for name, r in res["predict"].items():
        eps = r["median"]["examples_per_second"]
        lines.append(f"| {name} | {eps:.1f} | {eps / base:.2f}x | {r['median']['dev_macro_f1']:.4f} |")
    return "\n".join(lines) + "\n"


def _machine() -> dict:
    import onnxruntime

    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads_default": torch.get_num_threads(),
    }


def _cpu() -> str:
    try:
        return next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
