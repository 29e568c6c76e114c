"""How fast this machine could possibly be, against how fast emotionlib is on it, job by job.

    python benchmarks/ceiling.py --predict-run runs/<minilm run> --train-runs runs/<mpnet run> runs/<minilm run> \
        --feature-encoders me5-small embeddinggemma --reps 3 --out bench

A roofline bound from two measurements made on this machine:
- **the arithmetic each job needs**, counted by torch's FlopCounterMode on the run's own model (eager attention, so
  that every matrix product is counted): the FLOPs of one row at a padded length L are fitted exactly as
  a + b*L + c*L^2 from three lengths, then summed over the batches the job really makes (`predict`: the English
  test file in length-sorted batches of 64, in the int8 graph, the ONNX fp32 graph and PyTorch; training: every
  epoch the run logged in its length-grouped batches, forward, loss and backward with its frozen layers frozen, plus
  its validation pass each epoch; a frozen-feature pass: the batches it encoded; one LIME explanation: the batches
  of perturbations it scored);
- **the machine's fastest matrix product**: fp32 `torch.mm` and onnxruntime's dynamic-int8 MatMul (quantised as
  `export.quantize_onnx` does: per channel, 7-bit range), at the encoders' own layer shapes, best of --reps, on
  torch's thread count.
Job FLOPs / fastest rate is the least time the job can take here, even if everything but the matrix products cost
nothing. For `predict` the int8 graph of --predict-run is timed in the same process, interleaved with the matrix
products; the training times are the runs' own logged epoch times (each made with nothing else running).
Writes <out>/ceiling.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent

from emotionlib import data as D  # noqa: E402
from emotionlib.config import load_config  # noqa: E402
from emotionlib.export import ensure_onnx, quantize_onnx  # noqa: E402
from emotionlib.model import freeze_lower, load_model  # noqa: E402
from emotionlib.encoders import EncoderUnavailable, describe as _describe  # noqa: E402
from emotionlib.predict import OnnxForward, batched_proba, torch_forward  # noqa: E402
from emotionlib.runs import RunLayout, atomic_write_text, make_dir, write_json  # noqa: E402
from emotionlib.provenance import hardware, provenance  # noqa: E402
from emotionlib.sampling import EpochSampler  # noqa: E402
from emotionlib.split import training_parts  # noqa: E402

LENGTHS = (16, 48, 96)  # three padded lengths fix the quadratic exactly


def row_flops(model, length: int, train: bool, call=None) -> int:
    """FLOPs of one row of `length` tokens: forward, and with `train` the loss and backward (frozen layers frozen).
    `call(ids, mask)` runs something other than the model's own forward (a bare encoder's hidden states)."""
    ids = torch.full((1, length), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    model.train(train)
    call = call or model
    with FlopCounterMode(display=False) as counter:
        if train:
            logits = call(ids, mask)
            torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)).backward()
        else:
            with torch.inference_mode():
                call(ids, mask)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def flop_curve(model, train: bool, call=None) -> np.ndarray:
    """(a, b, c) with FLOPs(L) = a + b*L + c*L^2 for one row."""
    return np.polyfit(LENGTHS, [row_flops(model, n, train, call) for n in LENGTHS], 2)[::-1]


def batches_flops(curve: np.ndarray, lengths: list[int], order: list[int], batch_size: int) -> float:
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = [lengths[i] for i in order[start : start + batch_size]]
        padded = max(rows)
        total += len(rows) * (curve[0] + curve[1] * padded + curve[2] * padded**2)
    return total


def sorted_order(lengths: list[int]) -> list[int]:
    return np.argsort(lengths, kind="stable").tolist()


def fp32_peak(hidden: int, inner: int, rows: tuple[int, ...], reps: int, dtype=torch.float32) -> float:
    """Best GFLOP/s of torch.mm in `dtype` at an encoder's feed-forward shapes, over several row counts."""
    best = 0.0
    for m in rows:
        for k, n in ((hidden, inner), (inner, hidden)):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            torch.mm(a, b)
            best = max(best, 2 * m * k * n / min(_seconds(lambda: torch.mm(a, b)) for _ in range(reps)) / 1e9)
    return best


class Shapes:
    """A Forward that records the (rows, padded length) of every batch it scores: the FLOPs a job really made."""

    def __init__(self, forward):
        self.forward, self.seen = forward, []

    def __call__(self, input_ids, attention_mask):
        self.seen.append(tuple(input_ids.shape))
        return self.forward(input_ids, attention_mask)

    def flops(self, curve: np.ndarray) -> float:
        return shapes_flops(self.seen, curve)


def shapes_flops(seen: list[tuple[int, int]], curve: np.ndarray) -> float:
    """FLOPs of batches of (rows, padded length), a row costing curve @ (1, L, L^2)."""
    return float(sum(n * (curve[0] + curve[1] * length + curve[2] * length**2) for n, length in seen))


def layer_products(hidden: int, inner: int, tmp: Path):
    """An onnxruntime session of one encoder layer's matrix products alone (Q/K/V, attention output, both
    feed-forward layers) with random weights, quantised dynamically as export.quantize_onnx does."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    shapes = {
        "qkv": ("X", hidden, 3 * hidden),
        "out": ("X", hidden, hidden),
        "ffn1": ("X", hidden, inner),
        "ffn2": ("Z", inner, hidden),
    }
    weights = [
        numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), f"W{name}")
        for name, (_, k, n) in shapes.items()
    ]
    nodes = [helper.make_node("MatMul", [x, f"W{name}"], [name], name=name) for name, (x, _, _) in shapes.items()]
    graph = helper.make_graph(
        nodes,
        "layer",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["m", hidden]),
            helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["m", inner]),
        ],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["m", n]) for name, (_, _, n) in shapes.items()],
        weights,
    )
    src, out = tmp / "layer.onnx", tmp / "layer-int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    quantize_dynamic(src, out, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])


def products_seconds(sess, hidden: int, inner: int, rows_by_batch: list[int], layers: int) -> float:
    """Seconds the int8 products of every layer take at the job's batch shapes (rows = texts x padded length)."""
    rng = np.random.default_rng(1)
    total = 0.0
    for m in rows_by_batch:
        feeds = {
            "X": rng.standard_normal((m, hidden)).astype(np.float32),
            "Z": rng.standard_normal((m, inner)).astype(np.float32),
        }
        t0 = time.perf_counter()
        sess.run(None, feeds)
        total += time.perf_counter() - t0
    return total * layers


def int8_peak(sess, hidden: int, inner: int, m: int, reps: int) -> float:
    """Best GOP/s of the layer's int8 products at m rows (quantising the activations included)."""
    feeds = {"X": np.ones((m, hidden), np.float32), "Z": np.ones((m, inner), np.float32)}
    sess.run(None, feeds)
    return (
        2
        * m
        * (4 * hidden * hidden + 2 * hidden * inner)
        / min(_seconds(lambda: sess.run(None, feeds)) for _ in range(reps))
        / 1e9
    )


def op_shares(graph: Path, tok, texts: list[str], meta: dict, tmp: Path) -> dict[str, float]:
    """onnxruntime's own profile of one pass over `texts`: the share of kernel time by operator type."""
    forward = OnnxForward(graph, profile_prefix=str(tmp / "ort-profile"))
    batched_proba(forward, tok, texts, len(meta["labels"]), meta["max_length"], 64)
    events = json.loads(Path(forward.session.end_profiling()).read_text(encoding="utf-8"))
    by_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] = by_op.get(e["args"]["op_name"], 0.0) + e["dur"]
    total = sum(by_op.values())
    return {k: round(v / total, 4) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _seconds(fn, inner: int = 5) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def predict_ceiling(run: Path, texts: list[str], reps: int, tmp: Path, m: int) -> dict:
    """The run's int8 graph over `texts`, interleaved rep by rep with its layers' int8 products alone at the
    same batch shapes, and the fastest int8 and fp32 products."""
    model_name = load_config(RunLayout(run).config).model
    model, tok, meta = load_model(RunLayout(run).model, "eager")
    enc = tok(texts, truncation=True, max_length=meta["max_length"])
    lengths = [len(x) for x in enc["input_ids"]]
    order = sorted_order(lengths)
    rows = [len(b) * max(lengths[i] for i in b) for b in (order[s : s + 64] for s in range(0, len(order), 64))]
    flops = batches_flops(flop_curve(model, train=False), lengths, order, 64)
    graph = quantize_onnx(ensure_onnx(run), tmp / "int8.onnx")
    forward = OnnxForward(graph)
    c = model.encoder.config
    h, i, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    sess = layer_products(h, i, tmp)
    seconds, products, peaks = [], [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        batched_proba(forward, tok, texts, len(meta["labels"]), meta["max_length"], 64)
        seconds.append(time.perf_counter() - t0)
        products.append(products_seconds(sess, h, i, rows, layers))
        peaks.append(int8_peak(sess, h, i, m, 3))
    wall, prod, peak = statistics.median(seconds), statistics.median(products), max(peaks)
    fp32 = fp32_peak(h, i, (m,), 3)
    backends = {}  # the kept fp32 backends, the same texts and batches
    for name, fwd in (
        ("pytorch fp32", torch_forward(load_model(RunLayout(run).model)[0].eval())),
        ("onnx fp32", OnnxForward(ensure_onnx(run))),
    ):
        wall_b = statistics.median(
            _timed(lambda: batched_proba(fwd, tok, texts, len(meta["labels"]), meta["max_length"], 64))
            for _ in range(reps)
        )
        backends[name] = {
            "texts_per_second": round(len(texts) / wall_b, 1),
            "achieved_gflops": round(flops / wall_b / 1e9, 1),
            "share_of_peak": round(flops / wall_b / 1e9 / fp32, 3),
        }
    return {
        "run": str(run),
        "encoder": _describe(model_name),
        "texts": len(texts),
        "layers": layers,
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "gflop_per_text": round(flops / len(texts) / 1e9, 4),
        "int8_texts_per_second": round(len(texts) / wall, 1),
        "achieved_gops": round(flops / wall / 1e9, 1),
        "peak_int8_gops": round(peak, 1),
        "peak_fp32_gflops": round(fp32, 1),
        "share_of_peak": round(flops / wall / 1e9 / peak, 3),
        "ceiling_texts_per_second": round(len(texts) * peak * 1e9 / flops, 1),
        "products_only_texts_per_second": round(len(texts) / prod, 1),
        "op_shares": op_shares(graph, tok, texts, meta, tmp),
        "seconds_reps": [round(x, 3) for x in seconds],
        "products_seconds_reps": [round(x, 3) for x in products],
        "int8_peak_reps": [round(x, 1) for x in peaks],
        "fp32_backends": backends,
    }


def train_ceiling(run: Path, reps: int) -> dict:
    """FLOPs of the run's logged epochs (and a validation pass after each) against its logged training time and
    the fastest fp32 product at its encoder's shapes (rows: a batch of 16 to 16 batches' tokens)."""
    layout = RunLayout(run)
    cfg = load_config(layout.config)
    model, tok, meta = load_model(layout.model, "eager")
    c = model.encoder.config
    peak_fp32 = fp32_peak(c.hidden_size, c.intermediate_size, (512, 2048, 8192), reps)
    freeze_lower(model, cfg.freeze_layers)
    train_parts, val_parts = training_parts(cfg, layout)
    lens = {
        k: [
            len(x)
            for x in tok([t for p in parts for t in p.texts], truncation=True, max_length=cfg.max_length)["input_ids"]
        ]
        for k, parts in (("train", train_parts), ("val", val_parts))
    }
    log = [json.loads(line) for line in layout.train_log.read_text(encoding="utf-8").splitlines()]
    train_curve, eval_curve = flop_curve(model, train=True), flop_curve(model, train=False)
    val_flops = batches_flops(eval_curve, lens["val"], sorted_order(lens["val"]), cfg.eval_batch_size)
    sampler = EpochSampler(lens["train"], cfg.batch_size, cfg.seed, cfg.group_by_length)
    flops = 0.0
    for epoch in range(len(log)):
        sampler.set_epoch(epoch)
        flops += batches_flops(train_curve, lens["train"], list(sampler), cfg.batch_size) + val_flops
    seconds = sum(e["train_seconds"] for e in log)
    summary = json.loads(layout.train_summary.read_text(encoding="utf-8")) if layout.train_summary.is_file() else {}
    return {
        "run": str(run),
        "encoder": _describe(cfg.model),
        "freeze_layers": cfg.freeze_layers,
        "epochs": len(log),
        "train_rows": len(lens["train"]),
        "val_rows": len(lens["val"]),
        "tflop": round(flops / 1e12, 2),
        "logged_epoch_seconds": round(seconds, 1),
        "wall_seconds": summary.get("wall_seconds"),
        "achieved_gflops": round(flops / seconds / 1e9, 1),
        "peak_fp32_gflops": round(peak_fp32, 1),
        "share_of_peak": round(flops / seconds / 1e9 / peak_fp32, 3),
        "least_seconds": round(flops / peak_fp32 / 1e9, 1),
    }


def feature_ceiling(name: str, texts: list[str], reps: int) -> dict:
    """A frozen-feature pass (no cache) of encoder `name` at its member's layers over `texts`: the FLOPs of the
    batches it made (a bare encoder forward, every layer, as LayerFeatures runs it) against its time and the fastest
    fp32 product at that encoder's shapes."""
    from emotionlib.encoders import gemma, prompt_for, resolve_encoder
    from emotionlib.features import LayerFeatures
    from emotionlib.model import load_encoder

    folder = resolve_encoder(name)
    layers = list(gemma.FEATURE_LAYERS) if name == gemma.NAME else [-1]
    feats = LayerFeatures(folder, layers, 128, prompt=prompt_for(name))
    shapes = Shapes(feats._forward)
    feats._forward = shapes
    seconds = [_timed(lambda: feats(texts, progress=False)) for _ in range(reps)]
    encoder = load_encoder(folder, "eager")
    c = encoder.config
    curve = flop_curve(encoder, False, lambda ids, mask: encoder(input_ids=ids, attention_mask=mask).last_hidden_state)
    flops = shapes.flops(curve) / reps
    wall, peak = statistics.median(seconds), fp32_peak(c.hidden_size, c.intermediate_size, (2048,), reps)
    lengths = [
        len(x) for x in feats.tokenizer([feats.prompt + t for t in texts], truncation=True, max_length=128)["input_ids"]
    ]
    return {
        "encoder": _describe(name),
        "layers": layers,
        "texts": len(texts),
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "gflop_per_text": round(flops / len(texts) / 1e9, 4),
        "seconds": round(wall, 2),
        "texts_per_second": round(len(texts) / wall, 1),
        "achieved_gflops": round(flops / wall / 1e9, 1),
        "peak_fp32_gflops": round(peak, 1),
        "share_of_peak": round(flops / wall / 1e9 / peak, 3),
    }


def eager(network):
    """A copy of `network` whose attention runs as plain matrix products: FlopCounterMode counts sdpa's kernel
    otherwise than the products it does (predict_ceiling loads its model eager for the same reason)."""
    import copy

    twin = copy.deepcopy(network)
    for module in twin.modules():
        if getattr(module, "config", None) is not None and hasattr(module.config, "_attn_implementation"):
            module.config._attn_implementation = "eager"
    return twin


def stack_run(out: Path, profile: str) -> Path:
    """A stacked run of `profile` to time `predict` on, under <out>/runs, trained as the profile says (a network
    trained for less would get no weight in the stack, and `predict` would not run it); built once, its finished
    steps skipped on the next call."""
    from emotionlib.build import build

    cfg = load_config(profile, {"run_id": f"bench-{Path(profile).stem}", "runs_dir": str(out / "runs")})
    build(cfg)
    return cfg.run_dir


def stack_predict_ceiling(run: Path, texts: list[str], reps: int, lang: str | None = None) -> dict:
    """`predict` of a stacked run as `emotionlib.load(run).predict_proba` runs it (no feature cache): the FLOPs of the
    batches its encoders really scored (the frozen-feature encoder and each network the stack runs) against its
    time, and the fastest product at the feature encoder's shapes in the precision its feature pass runs (int8
    features against the fp32 peak: torch has no int8 product of its own to time)."""
    import emotionlib
    from emotionlib.model import load_encoder

    clf = emotionlib.load(run)
    stack = clf.model  # the run's LanguageStack
    feats = stack.features
    shapes = Shapes(feats._forward)
    feats._forward = shapes
    networks = {"network": stack.network}
    if stack.stack.get("network_folds"):
        networks = {f"fold network {i}": net for i, (net, _, _) in enumerate(stack.fold_networks())}
    networks |= {name: stack.run_member(name)[0] for name in stack.stack.get("runs", {})}
    seen = {name: [] for name in networks}

    def recorder(store: list):
        def hook(module, args, kwargs):
            store.append(tuple((args[0] if args else kwargs["input_ids"]).shape))

        return hook

    hooks = [net.register_forward_pre_hook(recorder(seen[name]), with_kwargs=True) for name, net in networks.items()]
    try:
        seconds = [_timed(lambda: clf.predict_proba(texts, lang=lang)) for _ in range(reps)]
    finally:
        for h in hooks:
            h.remove()
    encoder = load_encoder(feats.encoder_dir, "eager")
    curve = flop_curve(encoder, False, lambda ids, mask: encoder(input_ids=ids, attention_mask=mask).last_hidden_state)
    flops = {"features": shapes.flops(curve) / reps}
    flops |= {
        name: shapes_flops(seen[name], flop_curve(eager(net), False)) / reps
        for name, net in networks.items()
        if seen[name]
    }
    c = encoder.config
    bf16 = feats.precision == "bf16"
    peak = fp32_peak(c.hidden_size, c.intermediate_size, (2048,), reps, torch.bfloat16 if bf16 else torch.float32)
    wall, total = statistics.median(seconds), sum(flops.values())
    if not total:
        raise SystemExit(f"{run}: its stack runs no encoder for {lang or 'its language'} (only TF-IDF has weight)")
    return {
        "run": str(run),
        "feature_encoder": stack.stack["encoder"],
        "feature_precision": feats.precision,
        "network_precision": stack.meta.get("mixed_precision", "no"),
        "texts": len(texts),
        "gflop_per_text": round(total / len(texts) / 1e9, 4),
        "flops": {k: round(v) for k, v in flops.items()},
        "flop_shares": {k: round(v / total, 3) for k, v in flops.items()},
        "seconds": round(wall, 2),
        "texts_per_second": round(len(texts) / wall, 1),
        "achieved_gflops": round(total / wall / 1e9, 1),
        "peak_precision": "bf16" if bf16 else "fp32",
        "peak_gflops": round(peak, 1),
        "share_of_peak": round(total / wall / 1e9 / peak, 3),
    }


def lime_ceiling(run: Path, text: str) -> dict:
    """One LIME explanation of `text` by the run's network at its settings (every label, lime_num_samples
    perturbations scored by PyTorch): the FLOPs of the batches scored against the whole explanation's time
    (LIME's own fits included, as a user waits for them) and the fastest fp32 product."""
    from emotionlib.interpret import explain_lime

    layout = RunLayout(run)
    cfg = load_config(layout.config)
    model, tok, meta = load_model(layout.model)
    shapes = Shapes(torch_forward(model.eval()))
    t0 = time.perf_counter()
    explain_lime(
        model,
        tok,
        text,
        meta["labels"],
        meta["max_length"],
        cfg.lime_num_samples,
        cfg.lime_num_features,
        forward=shapes,
    )
    wall = time.perf_counter() - t0
    eager = load_model(layout.model, "eager")[0]
    c = eager.encoder.config
    flops = shapes.flops(flop_curve(eager, train=False))
    peak = fp32_peak(c.hidden_size, c.intermediate_size, (2048,), 3)
    return {
        "run": str(run),
        "encoder": _describe(cfg.model),
        "samples": cfg.lime_num_samples,
        "gflop": round(flops / 1e9, 1),
        "seconds": round(wall, 2),
        "achieved_gflops": round(flops / wall / 1e9, 1),
        "peak_fp32_gflops": round(peak, 1),
        "share_of_peak": round(flops / wall / 1e9 / peak, 3),
    }


def precision(name: str) -> str:
    return "fp32" if name == "no" else name


def stack_lines(stack: dict) -> list[str]:
    shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in stack["flop_shares"].items())
    hw = hardware()
    return [
        f"`predict` of the stack {Path(stack['run']).name} over {stack['texts']} texts, no feature cache "
        f"({hw['cpu']}, {', '.join(hw['cpu_features']) or 'no AVX2'}, {torch.get_num_threads()} threads; features "
        f"in {precision(stack['feature_precision'])}, network in {precision(stack['network_precision'])}): "
        f"{stack['texts_per_second']} "
        f"texts/s, {stack['gflop_per_text']} GFLOP a text ({shares}), {stack['achieved_gflops']} GFLOP/s, "
        f"{100 * stack['share_of_peak']:.0f}% of the {stack['peak_precision']} peak ({stack['peak_gflops']} GFLOP/s "
        "at the feature encoder's shapes)."
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predict-run", type=Path, help="a trained English run: predict and LIME")
    ap.add_argument("--train-runs", nargs="*", type=Path, default=[], help="trained runs whose training to bound")
    ap.add_argument(
        "--feature-encoders",
        nargs="*",
        default=["me5-small"],
        help="encoders whose frozen-feature pass to bound (installed ones; embeddinggemma too)",
    )
    ap.add_argument("--feature-texts", type=int, default=512, help="English test texts the feature pass encodes")
    ap.add_argument(
        "--stack-profile",
        default=None,
        help="time `predict` of a stacked run of this profile (e.g. best-stack), built under <out>/runs if needed",
    )
    ap.add_argument("--only-stack", action="store_true", help="only the stack's predict (--stack-profile)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=2048, help="rows of the timed matrix products (a batch's tokens)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    args = ap.parse_args()
    if args.only_stack:
        if not args.stack_profile:
            ap.error("--only-stack needs --stack-profile")
        make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
        texts = D.DataSource.resolve().load("test", "eng").texts[: args.feature_texts]
        stack = stack_predict_ceiling(stack_run(args.out, args.stack_profile), texts, args.reps)
        write_json(args.out / "stack_predict.json", stack | {"provenance": provenance()})
        print("\n".join(stack_lines(stack)))
        return
    if args.predict_run is None:
        ap.error("--predict-run is needed (unless --only-stack)")
    cfg = load_config(RunLayout(args.predict_run).config)
    texts = D.source_for(cfg).load("test", "eng").texts
    with tempfile.TemporaryDirectory() as tmp:
        pred = predict_ceiling(args.predict_run, texts, args.reps, Path(tmp), args.tokens)
    training = [train_ceiling(r, args.reps) for r in args.train_runs]
    features = []
    for name in args.feature_encoders:
        try:
            features.append(feature_ceiling(name, texts[: args.feature_texts], args.reps))
        except EncoderUnavailable as exc:  # e.g. EmbeddingGemma, installed on demand only
            print(f"frozen-feature pass of {name} not measured: {exc}")
    lime = lime_ceiling(args.predict_run, cfg.case_study)
    stack = None
    if args.stack_profile:
        run = stack_run(args.out, args.stack_profile)
        stack = stack_predict_ceiling(run, texts[: args.feature_texts], args.reps)
    result = {
        "predict": pred,
        "training": training,
        "features": features,
        "stack_predict": stack,
        "lime": lime,
        "threads": torch.get_num_threads(),
        "provenance": provenance(),
    }
    make_dir(args.out, "bench")  # a folder of its own, which `make clean` may remove
    write_json(args.out / "ceiling.json", result)
    md = report(pred, training, features, lime, stack)
    atomic_write_text(args.out / "ceiling.md", "\n".join(md) + "\n")
    print("\n".join(md))


def report(pred: dict, training: list[dict], features: list[dict], lime: dict, stack: dict | None = None) -> list[str]:
    hw = hardware()
    jobs = [
        (
            f"predict, {pred['encoder']}, int8 graph",
            "int8",
            pred["achieved_gops"],
            pred["peak_int8_gops"],
            pred["share_of_peak"],
        )
    ]
    jobs += [
        (
            f"predict, {pred['encoder']}, {name}",
            "fp32",
            b["achieved_gflops"],
            pred["peak_fp32_gflops"],
            b["share_of_peak"],
        )
        for name, b in pred["fp32_backends"].items()
    ]
    jobs += [
        (
            f"training, {t['encoder']} ({Path(t['run']).name}, {t['freeze_layers']} layers frozen)",
            "fp32",
            t["achieved_gflops"],
            t["peak_fp32_gflops"],
            t["share_of_peak"],
        )
        for t in training
    ]
    jobs += [
        (
            f"frozen-feature pass, {f['encoder']}, {f['texts']} texts",
            "fp32",
            f["achieved_gflops"],
            f["peak_fp32_gflops"],
            f["share_of_peak"],
        )
        for f in features
    ]
    if stack:
        jobs.append(
            (
                f"predict, a stack ({Path(stack['run']).name}: features of {stack['feature_encoder']} in "
                f"{precision(stack['feature_precision'])}, network in {precision(stack['network_precision'])}), "
                f"{stack['texts']} texts",
                stack["peak_precision"],
                stack["achieved_gflops"],
                stack["peak_gflops"],
                stack["share_of_peak"],
            )
        )
    jobs += [
        (
            f"one LIME explanation ({lime['samples']} samples), {lime['encoder']}",
            "fp32",
            lime["achieved_gflops"],
            lime["peak_fp32_gflops"],
            lime["share_of_peak"],
        )
    ]
    md = [
        f"# The machine's ceiling ({torch.get_num_threads()} threads)",
        "",
        f"CPU: {hw['cpu']}, {hw['cores']} cores; {', '.join(hw['cpu_features']) or 'no AVX2'} "
        f"(torch: {hw['torch_cpu_capability']}). Shares below are of this machine's own peaks, measured now.",
        "",
        "| job | precision | achieved GFLOP/s (GOP/s) | fastest product here | share |",
        "|---|---|---:|---:|---:|",
        *(f"| {j} | {p} | {a} | {k} | {100 * r:.0f}% |" for j, p, a, k, r in jobs),
        "",
        f"Fastest matrix product at the encoder's feed-forward shapes: int8 {pred['peak_int8_gops']} GOP/s "
        f"(onnxruntime, dynamic), fp32 {pred['peak_fp32_gflops']} GFLOP/s (torch.mm).",
        "",
        "| predict, int8 graph | texts | mean tokens | GFLOP a text | texts/s | GOP/s | share of int8 peak "
        "| ceiling texts/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {pred['encoder']} | {pred['texts']} | {pred['mean_tokens']} | {pred['gflop_per_text']} | "
        f"{pred['int8_texts_per_second']} | {pred['achieved_gops']} | {100 * pred['share_of_peak']:.0f}% | "
        f"{pred['ceiling_texts_per_second']} |",
        "",
        f"The int8 graph's matrix products alone (one layer's four products at each batch's rows, times "
        f"{pred['layers']} layers): {pred['products_only_texts_per_second']} texts/s.",
        "",
        "| onnxruntime operator (profile of one pass) | share of kernel time |",
        "|---|---:|",
        *(f"| {k} | {100 * v:.1f}% |" for k, v in pred["op_shares"].items() if v >= 0.001),
        "",
    ]
    if training:
        md += [
            "| training (fp32) | frozen layers | epochs | TFLOP | logged seconds | GFLOP/s | fp32 peak GFLOP/s "
            "| share of peak | least seconds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        md += [
            f"| {t['encoder']} ({Path(t['run']).name}) | {t['freeze_layers']} | {t['epochs']} | {t['tflop']} | "
            f"{t['logged_epoch_seconds']} | {t['achieved_gflops']} | {t['peak_fp32_gflops']} | "
            f"{100 * t['share_of_peak']:.0f}% | "
            f"{t['least_seconds']} |"
            for t in training
        ]
    if features:
        md += [
            "",
            "| frozen-feature pass (fp32, no cache) | layers | texts | mean tokens | GFLOP a text | seconds | "
            "texts/s | share of fp32 peak |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        md += [
            f"| {f['encoder']} | {f['layers']} | {f['texts']} | {f['mean_tokens']} | {f['gflop_per_text']} | "
            f"{f['seconds']} | {f['texts_per_second']} | {100 * f['share_of_peak']:.0f}% |"
            for f in features
        ]
    if stack:
        md += ["", *stack_lines(stack)]
    md += [
        "",
        f"One LIME explanation of the case-study text ({lime['samples']} perturbations, every label): "
        f"{lime['gflop']} GFLOP in {lime['seconds']} s, LIME's own fitting included.",
    ]
    return md


if __name__ == "__main__":
    main()
