"""The Python API (`emotionlib.load`), prediction inputs and outputs, and the ONNX backend."""

import numpy as np
import pandas as pd
import pytest

import emotionlib
from conftest import refused_lightly, run_cli, run_here
from emotionlib.data import read_split


def test_load_predicts_labels_over_the_tuned_thresholds(smoke_run):
    clf = emotionlib.load(smoke_run)
    texts = ["I can't believe how happy I feel!", "The storm scared me."]
    out = clf.predict(texts)
    probs = clf.predict_proba(texts)
    assert len(out) == 2 and probs.shape == (2, len(clf.labels))
    for row, p in zip(out, probs):
        assert list(row["probabilities"]) == clf.labels
        assert row["labels"] == [lab for lab, x, t in zip(clf.labels, p, clf.thresholds) if x >= t]
    assert clf.predict("one text")[0]["probabilities"].keys() == out[0]["probabilities"].keys()


def test_api_and_cli_give_the_same_predictions(smoke_run, data_dir, tmp_path):
    path = data_dir / "track_a/dev/eng.csv"
    out = run_cli("predict", "--run", str(smoke_run), "--input", str(path), "--output", str(tmp_path / "p.csv"))
    assert out.returncode == 0, out.stderr
    cli = pd.read_csv(tmp_path / "p.csv")
    clf = emotionlib.load(smoke_run)
    api = np.array([[int(lab in r["labels"]) for lab in clf.labels] for r in clf.predict(read_split(path).texts)])
    assert (cli[clf.labels].to_numpy() == api).all()


def test_prediction_input_needs_only_id_and_text(smoke_run, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,source,text\na,web,so happy\nb,app,so sad\n\n", encoding="utf-8")  # extra column, blank line
    out = run_here("predict", "--run", str(smoke_run), "--input", str(src), "--output", str(tmp_path / "o.csv"))
    assert out.returncode == 0, out.stderr
    assert list(pd.read_csv(tmp_path / "o.csv")["id"]) == ["a", "b"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--batch-size", "-5"], "--batch-size must be a positive integer"),
        (["--output", "{input}"], "--output equals --input"),
        (["--output", "{dir}"], "--output is a directory"),
    ],
)
def test_bad_predict_arguments_are_one_line_errors(smoke_run, tmp_path, args, message):
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,hello\n", encoding="utf-8")
    args = [a.format(input=src, dir=tmp_path) for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "o.csv")]
    out = run_here("predict", "--run", str(smoke_run), "--input", str(src), *args)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert src.read_text(encoding="utf-8") == "id,text\na,hello\n" and not (tmp_path / "o.csv").exists()


def test_a_bad_predict_argument_is_refused_before_the_network_loads(tmp_path):
    """No torch, transformers or onnxruntime is imported to refuse an argument (seconds on 2 cores)."""
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,hello\n", encoding="utf-8")
    rc, heavy, err = refused_lightly("predict", "--run", "runs/none", "--input", str(src), "--output", str(src))
    assert (rc, heavy) == ("2", []), err[-2000:]
    assert "--output equals --input" in err


def test_onnx_backend_matches_pytorch_on_the_english_test_file(smoke_run, data_dir):
    texts = read_split(data_dir / "track_a/test/eng.csv").texts
    torch_probs = emotionlib.load(smoke_run).predict_proba(texts)
    onnx_clf = emotionlib.load(smoke_run, backend="onnx")
    assert (smoke_run / "onnx" / "model.onnx").is_file()  # exported on first use, inside the run
    onnx_probs = onnx_clf.predict_proba(texts, batch_size=37)  # dynamic batch and length axes
    assert onnx_probs.shape == (2765, 5) and np.abs(onnx_probs - torch_probs).max() < 1e-4
    from emotionlib.runs import read_json

    fusions = read_json(smoke_run / "onnx" / "emotionlib.json")["fusions"]  # ONNX Runtime's transformer fusions
    assert fusions.get("Attention") == 2 and fusions.get("SkipLayerNormalization", 0) >= 2


def test_a_fusion_that_changes_the_predictions_is_not_kept(smoke_run, tmp_path, monkeypatch):
    from emotionlib.export import onnx_graph as E
    from emotionlib.runs import read_json

    real = E._check
    monkeypatch.setattr(
        E, "_check", lambda folder, tok, meta, ref, graph=None: 1.0 if graph else real(folder, tok, meta, ref)
    )
    E.export_onnx(smoke_run, tmp_path / "plain")
    assert read_json(tmp_path / "plain" / "emotionlib.json")["fusions"] == {}
    assert sorted(p.name for p in (tmp_path / "plain").glob("*.onnx")) == ["model.onnx"]  # the fused one removed


def test_onnx_is_exported_again_when_the_weights_change(smoke_run, tmp_path):
    from emotionlib.export import ONNX_META, ensure_onnx
    from emotionlib.runs import read_json, write_json

    path = ensure_onnx(smoke_run)
    meta = read_json(path.parent / ONNX_META)
    write_json(path.parent / ONNX_META, meta | {"model_sha256": "0" * 64})  # as if made from other weights
    ensure_onnx(smoke_run)
    assert read_json(path.parent / ONNX_META)["model_sha256"] == meta["model_sha256"]


def test_export_onnx_cli_and_predict_backend(smoke_run, tmp_path):
    out = run_here("export", "--run", str(smoke_run), "--format", "onnx", "--out", str(tmp_path / "onnx"))
    assert out.returncode == 0, out.stderr
    assert {"model.onnx", "emotionlib.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "onnx").iterdir()}
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,so happy\nb,so scared\n", encoding="utf-8")
    for backend in ("torch", "onnx"):
        out = run_here(
            "predict",
            "--run",
            str(smoke_run),
            "--input",
            str(src),
            "--output",
            str(tmp_path / f"{backend}.csv"),
            "--backend",
            backend,
        )
        assert out.returncode == 0, out.stderr
    assert (tmp_path / "torch.csv").read_text() == (tmp_path / "onnx.csv").read_text()


def test_int8_is_kept_only_within_the_allowed_validation_drop_and_a_refusal_is_one_line(
    smoke_run, tmp_path, monkeypatch
):
    import shutil

    from emotionlib.export import int8 as export  # where the limit is read
    from emotionlib.runs import RunLayout, read_json

    kept, refused = tmp_path / "kept", tmp_path / "refused"
    shutil.copytree(smoke_run, kept)
    shutil.copytree(smoke_run, refused)
    monkeypatch.setattr(export, "INT8_MAX_DROP", 1.0)
    clf = emotionlib.load(kept, backend="onnx-int8")
    texts = ["so happy today", "the storm scared me", "fine"]
    assert np.abs(clf.predict_proba(texts) - emotionlib.load(kept).predict_proba(texts)).max() < 0.05
    record = read_json(kept / "onnx" / "emotionlib.json")["int8"]
    torch_val = read_json(RunLayout(kept).set_metrics("val", "eng"))["entry"]["threshold_0.5"]["macro_f1"]
    assert record["kept"] and record["val_macro_f1_0.5"]["float"] == pytest.approx(torch_val, abs=1e-9)
    assert (kept / "onnx" / "model-int8.onnx").is_file()

    monkeypatch.setattr(export, "INT8_MAX_DROP", -1.0)  # any drop, even none, is too much
    with pytest.raises(ValueError, match="int8 costs .* validation macro-F1 points"):
        emotionlib.load(refused, backend="onnx-int8")
    assert not (refused / "onnx" / "model-int8.onnx").exists()
    assert not [p for p in (refused / "onnx").iterdir() if p.name.endswith(".tmp")]
    assert read_json(refused / "onnx" / "emotionlib.json")["int8"]["kept"] is False
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,so happy\n", encoding="utf-8")
    out = run_here(
        "predict",
        "--run",
        str(refused),
        "--input",
        str(src),
        "--output",
        str(tmp_path / "o.csv"),
        "--backend",
        "onnx-int8",
    )  # the recorded refusal, without quantising again
    assert out.returncode == 2 and "predict with backend 'onnx'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.csv").exists()


def test_damaged_weights_are_a_one_line_error(smoke_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(smoke_run, run)
    (run / "model" / "model.safetensors").write_bytes(b"")
    src = tmp_path / "in.csv"
    src.write_text("id,text\na,hi\n", encoding="utf-8")
    out = run_here("predict", "--run", str(run), "--input", str(src), "--output", str(tmp_path / "o.csv"))
    assert out.returncode == 2 and "model.safetensors: damaged or changed since the run was made" in out.stderr
    assert "--retrain" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_onnx_runtime_profile_gives_each_operator_its_share(smoke_run, data_dir, tmp_path):
    from emotionlib.export import ensure_onnx
    from emotionlib.metadata import read_metadata
    from test_benchmarks import load_benchmark

    clf = emotionlib.load(smoke_run)
    texts = read_split(data_dir / "track_a/dev/eng.csv").texts
    shares = load_benchmark("ceiling").op_shares(
        ensure_onnx(smoke_run), clf.tokenizer, texts, read_metadata(smoke_run / "model"), tmp_path
    )
    assert sum(shares.values()) == pytest.approx(1, abs=0.01) and "Attention" in shares
    assert list(tmp_path.glob("ort-profile*.json"))  # onnxruntime's own trace, kept beside


def test_loading_a_run_for_prediction_imports_no_trainer(smoke_run):
    import subprocess
    import sys

    code = (
        "import sys, emotionlib; m = emotionlib.load(sys.argv[1]); m.predict(['hello']); "
        "assert 'emotionlib.train' not in sys.modules, sorted(k for k in sys.modules if k.startswith('emotionlib'))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(smoke_run)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
