"""`make bench-levers` (also run by `make bench`): the speed levers for training me5-small on the CPU, side by side.

Each variant is one short training through `emotionlib.train.train` (--rows rows of a language's train part), in
its own child process (so its peak RSS is its own); the variants run interleaved, rep by rep, so that a slower
spell of a shared machine falls on all of them. Fine-tuning variants train 1 epoch; the frozen-encoder mode
trains --frozen-epochs epochs and its figure counts the feature pass (with an empty cache) in its time.

  fp32                the quick profile on me5-small as it was (fp32, batches of 16 grouped by length)
  bf16                bf16 autocast (where the CPU has oneDNN bf16 kernels; mixed_precision: auto picks it)
  freeze6 / bf16+freeze6   embeddings and the lowest 6 of 12 layers frozen (no gradient below layer 7)
  bf16 batch 32       twice the batch, still grouped by length
  frozen encoder      freeze_layers: -1, bf16: pooled features once, then only the head trains
  fp32 reused memory  fp32 with glibc keeping freed large blocks for reuse (reuse_freed_memory), not fresh pages
  hf_trainer fp32 / bf16   transformers' Trainer, same model, data, batch, learning rate and schedule, with
                      train_sampling_strategy="group_by_length" (the fair peer of a loop that groups);
                      "hf_trainer fp32 reused memory" with reuse_freed_memory set in its process too
  torch.compile       eager against compiled bf16 training steps on the same batches, in one process
                      (compilation time reported apart)
  compile / freeze6+compile   the config option torch_compile: true (regional compilation, dynamic shapes),
                      compilation inside the timed epochs
  hf_trainer compile  the Trainer with torch_compile=True (its own whole-model compilation)

  python benchmarks/levers.py --model mpnet --langs eng --rows 400 --epochs 2 --reps 2 \
      --only fp32 compile freeze6 freeze6+compile "hf_trainer fp32" "hf_trainer compile"   # mpnet, fp32 CPUs

  python benchmarks/levers.py --langs eng deu --rows 200 --reps 2 --out bench   # the defaults; about 17 min
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

# each encoder at its profile's learning rate; --freeze picks how many lower layers the freezing variants freeze
LEARNING_RATES = {"me5-small": 5e-5, "mpnet": 5e-5, "minilm": 1e-4}
BASE = {"model": "me5-small", "learning_rate": 5e-5, "patience": 0, "freeze_word_embeddings": False}
VARIANTS = {
    "fp32": {},
    "bf16": {"mixed_precision": "bf16"},
    "freeze6": {"freeze_layers": 6},
    "bf16+freeze6": {"mixed_precision": "bf16", "freeze_layers": 6},
    "bf16 batch 32": {"mixed_precision": "bf16", "batch_size": 32},
    "frozen encoder (bf16)": {"mixed_precision": "bf16", "freeze_layers": -1, "learning_rate": 1e-3},
    # glibc keeps freed large blocks for reuse (reuse_freed_memory below), for our loop and for the Trainer
    "fp32 reused memory": {"reuse_memory": True},
    "hf_trainer fp32": {"trainer": True},
    # the token embedding table kept as pretrained (no 47 MB gradient a step for MiniLM), in both loops
    "frozen word embeddings": {"freeze_word_embeddings": True},
    "hf_trainer frozen word embeddings": {"trainer": True, "freeze_word_embeddings": True},
    "hf_trainer fp32 reused memory": {"trainer": True, "reuse_memory": True},
    "hf_trainer bf16": {"trainer": True, "mixed_precision": "bf16"},
    # torch.compile as the config option (regional, dynamic shapes) and as the Trainer's own torch_compile=True;
    # the compilation counts in the time (run with --epochs 2 or more to see it amortised)
    "compile": {"torch_compile": True},
    "freeze6+compile": {"freeze_layers": 6, "torch_compile": True},
    "hf_trainer compile": {"trainer": True, "torch_compile": True},
}


def reuse_freed_memory(largest: int = 1 << 30) -> bool:
    """Let the C library keep freed blocks up to `largest` bytes for reuse instead of handing them back to the kernel.
    Every training step frees and makes again the same large tensors (MiniLM's 47 MB word-embedding gradient);
    above glibc's own threshold (32 MB at most) each comes back as fresh pages that the kernel zeroes and faults in
    on first touch, which made zeroing that gradient 3-4x slower than zeroing reused memory. Measured as a lever,
    not kept in emotionlib: faster in a first epoch, not over a whole training (docs/speed.md). False (nothing
    changed) where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, largest) and libc.mallopt(m_trim_threshold, 2 * largest))
    except (OSError, AttributeError):
        return False


def set_model(model: str, freeze: int) -> None:
    """Point BASE and the freezing variants at `model` (the variants' names keep the number of frozen layers)."""
    BASE.update(model=model, learning_rate=LEARNING_RATES[model])
    for name in [k for k in VARIANTS if "freeze6" in k]:
        settings = VARIANTS.pop(name)
        VARIANTS[name.replace("freeze6", f"freeze{freeze}")] = {**settings, "freeze_layers": freeze}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_emotionlib(settings: dict, lang: str, rows: int, epochs: int, work: Path) -> dict:
    from emotionlib.config import load_config
    from emotionlib.runs import read_json
    from emotionlib.train import train

    cfg = load_config(
        "quick",
        {
            **BASE,
            **settings,
            "languages": [lang],
            "max_train_rows": rows,
            "epochs": epochs,
            "runs_dir": str(work),
            "run_id": "lever",
        },
    )
    run = train(cfg)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    prov = read_json(run / "provenance.json")
    seconds = sum(e["train_seconds"] for e in log) + (prov.get("feature_seconds") or 0)
    return {
        "seconds": seconds,
        "examples_per_second": prov["n_train"] * len(log) / seconds,
        "feature_seconds": prov.get("feature_seconds"),
        "epochs": len(log),
        "last_epoch_examples_per_second": log[-1]["train_examples_per_second"],
        "val_macro_f1_last_epoch": log[-1]["val_macro_f1"],
    }


def train_part(lang: str, rows: int, work: Path):
    """The config, train part (the split emotionlib makes), encoder folder and tokenizer of a variant."""
    from emotionlib.split import prepare_data, training_parts
    from emotionlib.config import load_config
    from emotionlib.model import load_tokenizer
    from emotionlib.encoders import resolve_encoder

    cfg = load_config(
        "quick", {**BASE, "languages": [lang], "max_train_rows": rows, "runs_dir": str(work), "run_id": "split"}
    )
    prepare_data(cfg)
    folder = resolve_encoder(cfg.model)
    return cfg, training_parts(cfg)[0][0], folder, load_tokenizer(folder)


def child_trainer(settings: dict, lang: str, rows: int, work: Path, epochs: int = 1) -> dict:
    """Trainer on the same train part, same encoder, head, loss and schedule (bench.py's wrapper)."""
    trainer = make_trainer(settings, lang, rows, work, epochs)
    seconds = trainer.train().metrics["train_runtime"]
    return {"seconds": seconds, "examples_per_second": len(trainer.train_dataset) * epochs / seconds, "epochs": epochs}


def make_trainer(settings: dict, lang: str, rows: int, work: Path, epochs: int = 1):
    """The Trainer of child_trainer, not yet trained (benchmarks/profile_phases.py profiles its epoch)."""
    import numpy as np
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from bench import _TrainerModel
    from emotionlib.model import build_classifier, freeze_lower

    cfg, tr, folder, tok = train_part(lang, rows, work)
    torch.manual_seed(cfg.seed)
    classifier = build_classifier(folder, tr.labels, "linear")
    freeze_lower(classifier, settings.get("freeze_layers", 0), settings.get("freeze_word_embeddings", False))
    model = _TrainerModel(classifier)
    enc = tok(tr.texts, truncation=True, max_length=cfg.max_length)
    ds = [
        {"input_ids": i, "attention_mask": a, "labels": y.astype(np.float32)}
        for i, a, y in zip(enc["input_ids"], enc["attention_mask"], tr.y)
    ]
    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        num_train_epochs=epochs,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type="linear",
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=settings.get("mixed_precision") == "bf16",
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        torch_compile=settings.get("torch_compile", False),
    )
    return Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorWithPadding(tok))


def child_compile(lang: str, rows: int, work: Path, steps: int) -> dict:
    """Eager and compiled bf16 training steps on the same length-grouped batches of 16, alternated batch by
    batch after a warm-up pass that compiles every shape the timed batches have."""
    from emotionlib import dataset as DS
    from emotionlib.model import build_classifier
    from emotionlib.sampling import EpochSampler

    cfg, tr, folder, tok = train_part(lang, rows, work)
    ex = DS.Examples.from_splits([tr], tr.labels)
    ds = DS.EmotionDataset(ex, tok, cfg.max_length)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=16, sampler=EpochSampler(ds.lengths, 16, 42, True), collate_fn=DS.Collator(tok.pad_token_id)
    )
    batches = list(dl)[:steps]
    torch.manual_seed(0)
    eager = build_classifier(folder, tr.labels, "linear")
    torch.manual_seed(0)
    compiled_inner = build_classifier(folder, tr.labels, "linear")
    compiled = torch.compile(compiled_inner, dynamic=True)
    opts = {m: torch.optim.AdamW(m.parameters(), lr=5e-5, fused=True) for m in (eager, compiled_inner)}

    def step(model, opt_model, b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(b["input_ids"], b["attention_mask"])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), b["labels"].float())
        loss.backward()
        opts[opt_model].step()
        opts[opt_model].zero_grad()

    t0 = time.perf_counter()
    for b in batches:  # compiles (dynamic shapes: a few graphs, not one per length)
        step(compiled, compiled_inner, b)
    compile_seconds = time.perf_counter() - t0
    times = {"eager": 0.0, "compiled": 0.0}
    n = 0
    for b in batches:
        for name, model, inner in (("eager", eager, eager), ("compiled", compiled, compiled_inner)):
            t = time.perf_counter()
            step(model, inner, b)
            times[name] += time.perf_counter() - t
        n += len(b["input_ids"])
    return {
        "seconds": times["compiled"],
        "examples_per_second": n / times["compiled"],
        "eager_examples_per_second": n / times["eager"],
        "first_pass_seconds_with_compilation": compile_seconds,
        "steps": len(batches),
    }


def child(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="emotionlib-levers-"))
    os.environ["EMOTIONLIB_CACHE"] = str(work / "cache")  # the frozen encoder computes its features afresh
    settings = json.loads(args.settings)
    if settings.pop("reuse_memory", False):
        reuse_freed_memory()
    if args.variant == "torch.compile":
        result = child_compile(args.lang, args.rows, work, args.compile_steps)
    elif settings.pop("trainer", False):
        result = child_trainer(settings, args.lang, args.rows, work, args.epochs)
    else:
        epochs = args.frozen_epochs if settings.get("freeze_layers") == -1 else args.epochs
        result = child_emotionlib(settings, args.lang, args.rows, epochs, work)
    result["peak_rss_mb"] = peak_mb()
    print("RESULT " + json.dumps(result))


def one_child(variant: str, settings: dict, lang: str, args) -> dict:
    from bench import one_child as run_child

    env = {k: v for k, v in os.environ.items() if k != "EMOTIONLIB_CACHE"}
    flags = {
        "--rows": args.rows,
        "--frozen-epochs": args.frozen_epochs,
        "--epochs": args.epochs,
        "--compile-steps": args.compile_steps,
        "--threads": args.threads,
        "--model": args.model,
        "--freeze": args.freeze,
    }
    return run_child(
        [
            "--variant",
            variant,
            "--settings",
            json.dumps(settings),
            "--lang",
            lang,
            *(str(x) for kv in flags.items() for x in kv),
        ],
        f"{lang} {variant}",
        __file__,
        env,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    p.add_argument("--langs", nargs="+", default=["eng", "deu"])
    p.add_argument("--rows", type=int, default=200, help="training rows per variant (before the 80/20 split)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--frozen-epochs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1, help="epochs of the fine-tuning variants")
    p.add_argument("--compile-steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--model", default="me5-small", choices=sorted(LEARNING_RATES))
    p.add_argument("--freeze", type=int, default=6, help="lower layers the freezing variants freeze")
    p.add_argument("--only", nargs="+", help="variant names (default: all, then torch.compile)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="")
    p.add_argument("--settings", default="{}")
    p.add_argument("--lang", default="eng")
    args = p.parse_args()
    set_model(args.model, args.freeze)
    if args.child:
        return child(args)
    variants = {k: v for k, v in VARIANTS.items() if not args.only or k in args.only}
    with_compile = not args.only or "torch.compile" in args.only
    t0 = time.time()
    runs: dict = {
        lang: {name: [] for name in [*variants, *(["torch.compile"] if with_compile else [])]} for lang in args.langs
    }
    for rep in range(args.reps):
        for lang in args.langs:
            print(f"rep {rep + 1}/{args.reps}, {lang}", flush=True)
            for name, settings in variants.items():
                runs[lang][name].append(one_child(name, settings, lang, args))
            if with_compile:
                runs[lang]["torch.compile"].append(one_child("torch.compile", {}, lang, args))
    res = {
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out)},
        "variants": VARIANTS,
        "runs": runs,
        "wall_seconds": round(time.time() - t0, 1),
    }
    from emotionlib.runs import atomic_write_text, make_dir

    make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
    stem = "levers" if args.model == "me5-small" else f"levers-{args.model}"
    atomic_write_text(args.out / f"{stem}.json", json.dumps(res, indent=2))
    atomic_write_text(args.out / f"{stem}.md", table(res))
    print(table(res))


def table(res: dict) -> str:
    m = res["machine"]
    st = res["settings"]
    lines = [
        f"model {st.get('model', 'me5-small')}; machine: {m['cpu']}, nproc {m['nproc']}, torch {m['torch']}, "
        f"cpu capability {m['cpu_capability']}, oneDNN bf16 {m['onednn_bf16']}; {st['rows']} rows before the "
        f"80/20 split, {st.get('epochs', 1)} epoch(s), {st['reps']} reps interleaved",
        "",
        "| language | variant | examples/s (median) | vs fp32 | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for lang, variants in res["runs"].items():
        base = statistics.median(r["examples_per_second"] for r in variants["fp32"]) if variants.get("fp32") else None
        for name, rs in variants.items():
            eps = statistics.median(r["examples_per_second"] for r in rs)
            extra = ""
            if name == "torch.compile":
                eager = statistics.median(r["eager_examples_per_second"] for r in rs)
                comp = statistics.median(r["first_pass_seconds_with_compilation"] for r in rs)
                extra = f" (eager bf16 steps {eager:.1f} ex/s; first pass with compilation {comp:.0f} s)"
            if rs[0].get("epochs", 1) > 1 and "last_epoch_examples_per_second" in rs[0]:
                last = statistics.median(r["last_epoch_examples_per_second"] for r in rs)
                extra += f" (last epoch {last:.1f} ex/s)"
            ratio = f"{eps / base:.2f}x" if base else "—"
            lines.append(
                f"| {lang} | {name}{extra} | {eps:.1f} | {ratio} | "
                f"{statistics.median(r['peak_rss_mb'] for r in rs):.0f} |"
            )
    lines += ["", f"total wall time: {res['wall_seconds']:.0f} s", ""]
    return "\n".join(lines)


def machine() -> dict:
    from emotionlib.hardware import resolve_precision

    cpu = (
        next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "unknown")
        if Path("/proc/cpuinfo").is_file()
        else "unknown"
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16": resolve_precision("auto") == "bf16" if not torch.cuda.is_available() else None,
    }


if __name__ == "__main__":
    main()
