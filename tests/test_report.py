import pytest

from conftest import ROOT
from emotionlib.runs import read_json


pytestmark = pytest.mark.xdist_group("smoke_report")  # the session's one smoke report (conftest)


def test_html_shows_the_measured_macro_f1(smoke_report):
    run_dir, report_dir, _ = smoke_report
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    headline = read_json(run_dir / "metrics.json")["headline"]
    assert f"macro-F1 {headline['macro_f1']:.3f}" in html
    assert "Replace these values" not in html  # the seed's placeholder sentence
    assert "<img" in html and "RunResults.load" not in html  # figures in, code cells out
    for section in (
        "1 Introduction",
        "2 Model architecture",
        "3 Data and training",
        "4 Evaluation",
        "5 Interpretability",
        "6 Results and discussion",
        "7 Conclusion",
    ):
        assert section in html


def test_sections_that_do_not_apply_to_the_run_are_left_out(smoke_report):
    _, report_dir, _ = smoke_report
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    for absent in ("Per-language stacking", "Cross-lingual transfer", "stack_minus_best.png", "No sweep has been run"):
        assert absent not in html, absent


def test_the_terminal_shows_each_epoch_and_no_kernel_warning(smoke_report):
    *_, stderr = smoke_report
    epochs = [line for line in stderr.splitlines() if line.strip().startswith("epoch 1/1: ")]
    assert epochs and "val_macro_f1" in epochs[0] and "examples/s" in epochs[0] and "left" in epochs[0], stderr
    assert "without encryption" not in stderr


def test_pdf_has_pages(smoke_report):
    from pypdf import PdfReader

    _, report_dir, _ = smoke_report
    pdf = report_dir / "report.pdf"
    assert pdf.is_file(), "no PDF: is chromium installed (make setup / make system-deps)?"
    assert len(PdfReader(pdf).pages) >= 3


def test_executed_notebooks_sit_beside_the_report(smoke_report):
    _, report_dir, _ = smoke_report
    names = {p.name for p in report_dir.glob("*.ipynb")}
    assert names == {"01_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_interpret.ipynb", "05_report.ipynb"}


def test_committed_notebooks_are_clean_and_parameterised():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, path.name
        names = {
            line.split("=")[0].strip()
            for line in params[0].source.splitlines()
            if "=" in line and not line.startswith("#")
        }
        # 01 takes a profile and overrides of any field; 02-05 read everything from the run directory
        assert names == ({"profile", "run_id", "runs_dir", "overrides"} if path.name < "02" else {"run_dir"}), path.name
        assert not any("'eval/" in c.source or '"eval/' in c.source or "interpret/" in c.source for c in code)
        assert not any("for " in c.source and ".backward(" in c.source for c in code)  # no training loop here


def test_comparison_count_states_the_languages_beaten_on_test():
    from types import SimpleNamespace

    import pandas as pd

    from emotionlib.config import load_config
    from emotionlib.report import comparison_count, trained_text

    t = pd.DataFrame(
        {
            "lang": ["amh", "deu", "hin", "eng"],
            "scored_on": ["test", "test", "test", "dev"],
            "emotionlib": [60.0, 40.0, 86.0, 70.0],
            "tfidf_lr": [57.7, 46.1, 75.2, 60.0],
            "best_published": [65.0, 64.2, 85.5, None],
        }
    )
    r = SimpleNamespace(comparison=t, config=load_config("smoke"))
    text = comparison_count(r)
    assert "**3 languages with a published figure**" in text and "on **1** (hin)" in text
    assert "TF-IDF baseline on 2" in text and "62.00 against 71.57" in text
    frozen = SimpleNamespace(
        model_meta={"freeze_layers": -1, "mixed_precision": "bf16"},
        config=r.config,
        provenance={"trainable_parameters": 2310},
    )
    assert "head only" in trained_text(frozen) and "2,310 trainable" in trained_text(frozen)
    assert "bf16 autocast" in trained_text(frozen)
    partial = SimpleNamespace(model_meta={"freeze_layers": 6}, provenance={}, config=r.config)
    assert "lowest 6 layers frozen" in trained_text(partial) and "in fp32" in trained_text(partial)
    balanced = SimpleNamespace(
        model_meta={"freeze_layers": 6},
        config=load_config("multilingual"),
        provenance={"language_rows_per_epoch": {"arq": 1450, "eng": 1980, "amh": 2106}},
    )
    assert "n^(1/3) of its n training rows (from 1,450 to 2,106 rows a language)" in trained_text(balanced)


def test_sweep_label_effects_pair_each_setting_with_none_on_the_other_axes(tmp_path):
    import pandas as pd

    from emotionlib.report import sweep_label_effects

    (tmp_path / "sweep-x").mkdir()
    pd.DataFrame(
        {
            "loss": ["bce", "bce", "focal", "focal"],
            "loss_weighting": ["none", "static", "none", "static"],
            "seeds": [3, 3, 3, 2],
            "val_f1_0.5_mean": [0.6, 0.62, 0.61, 0.6],
            "val_anger_0.5_mean": [0.50, 0.54, 0.40, 0.42],
            "val_joy_0.5_mean": [0.70, 0.69, 0.70, 0.70],
        }
    ).to_csv(tmp_path / "sweep-x" / "summary.csv", index=False)
    lines = sweep_label_effects(tmp_path)
    # anger: +4 (bce) and +2 (focal) points, mean +3; joy: -1 and 0, mean -0.5; the fewest seeds of the pairs
    assert lines == [
        "- `loss_weighting: static` against `none` (sweep-x, 2 seeds, validation F1 at 0.5, points): "
        "anger +3.0, joy -0.5."
    ]
    (tmp_path / "sweep-y").mkdir()  # a sweep without per-label columns or without a `none` says nothing
    pd.DataFrame({"augment": ["eda"], "seeds": [3], "val_f1_0.5_mean": [0.6]}).to_csv(
        tmp_path / "sweep-y" / "summary.csv", index=False
    )
    assert sweep_label_effects(tmp_path) == lines
