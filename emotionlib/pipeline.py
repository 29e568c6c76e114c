"""The pipeline runner behind `make report`: papermill executes the numbered notebooks for one run, nbconvert
renders the last to HTML (no code), headless Chromium prints it to PDF."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emotionlib import data as D
from emotionlib.config import Config, shipped
from emotionlib.run_config import check_config
from emotionlib.metadata import is_ensemble, read_metadata
from emotionlib.preflight import check
from emotionlib.runs import (
    RunLayout,
    atomic_dir,
    atomic_path,
    atomic_write_text,
    check_location,
    kind_of,
    marked_parent,
    write_json,
)

NOTEBOOKS_DIR = shipped("notebooks", "notebooks")
NOTEBOOKS = ("01_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_interpret.ipynb", "05_report.ipynb")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-pdf-header-footer",
]

CONFIG_NOTEBOOKS = NOTEBOOKS[:1]  # 01 takes the config (profile + overrides) and records it; 02-05 the run directory


def notebook_parameters(cfg: Config, name: str) -> dict:
    if name not in CONFIG_NOTEBOOKS:
        return {"run_dir": str(cfg.run_dir.resolve())}
    runs_dir = str(Path(cfg.runs_dir).resolve())
    return {
        "profile": cfg.profile,
        "run_id": cfg.run_id,
        "runs_dir": runs_dir,
        "overrides": cfg.to_dict() | {"runs_dir": runs_dir},
    }


class NotebookFailed(RuntimeError):
    """A notebook's cell raised; the message is the notebook, the cell and the error, on one line."""


class DropOrphanedDeadKernel(logging.Filter):
    """When the kernel dies (Ctrl-C kills it with us) nbclient leaves the running cell's task behind, and asyncio
    logs its DeadKernelError with a traceback as "never retrieved" whenever the task is collected, after our
    one-line message. The death is already reported, by that message or by papermill's own error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "DeadKernelError"


def _quiet_orphaned_cells() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, DropOrphanedDeadKernel) for f in log.filters):
        log.addFilter(DropOrphanedDeadKernel())


class NotebookLines:
    """A notebook's printed lines (its stdout, as papermill streams it), shown in the terminal as they come: the
    epoch lines with validation F1, examples/s and the time left, the stack's languages, the feature passes.
    Progress bars (the kernel's stderr, redrawn with carriage returns) and displayed tables stay in the notebook."""

    def write(self, text: str) -> None:
        for line in text.rstrip().splitlines():
            print(f"  {line}", file=sys.stderr, flush=True)

    def flush(self) -> None:
        sys.stderr.flush()


# the kernel's own warning that its loopback sockets are not encrypted (the connection is HMAC-signed, and
# local): one line of noise for every notebook
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def execute_notebooks(cfg: Config, out_dir: Path, notebooks=NOTEBOOKS, log_output: bool = True) -> list[Path]:
    """Run the numbered notebooks in order with papermill; executed copies go to `out_dir`."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    _quiet_orphaned_cells()
    done = []
    for name in notebooks:
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] executing {name}", file=sys.stderr, flush=True)
        try:
            pm.execute_notebook(
                NOTEBOOKS_DIR / name,
                out_dir / name,
                parameters=notebook_parameters(cfg, name),
                cwd=Path.cwd(),
                kernel_name="python3",
                stdout_file=NotebookLines() if log_output else None,
                progress_bar=False,
                shutdown_kernel="immediate",
                extra_arguments=KERNEL_ARGS,
            )
            # immediate: when this process is interrupted, the kernel is killed at once rather than asked to stop
            # mid-cell (which made it print a ZMQError traceback); a finished notebook has nothing left to flush
        except PapermillExecutionError as exc:
            raise NotebookFailed(f"{name}, cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
        print(f"  {name} done in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        done.append(out_dir / name)
    return done


def render_html(notebook: Path, html: Path) -> Path:
    """nbconvert to HTML without code cells: the report reads as a document."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(notebook))
    atomic_write_text(html, body)
    return html


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class PdfFailed(RuntimeError):
    """Chromium could not print the report; `reason` is its exit status and last line, without the paths."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def render_pdf(html: Path, pdf: Path) -> Path | None:
    """Print the HTML to PDF with Debian's headless Chromium; without one, say how to install it and go on."""
    exe = chromium()
    if exe is None:
        print(
            "PDF skipped: no Chromium found. Install it with: sudo apt-get install -y chromium "
            "(or run `make setup` as root)",
            file=sys.stderr,
        )
        return None
    profile = Path(tempfile.mkdtemp(prefix="emotionlib-chromium-"))
    try:
        with atomic_path(pdf) as tmp:
            out = subprocess.run(
                [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html.resolve().as_uri()],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
                said = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
                raise PdfFailed(
                    f"{exe} could not print {html} to PDF (exit {out.returncode}): {said}",
                    f"{exe} exited {out.returncode}: {said}",
                )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return pdf


def check_reports_dir(reports_dir: Path, runs_dir: Path) -> None:
    """Reports go to a folder of their own: not a file, not the runs folder or inside it or any folder emotionlib
    made for something else."""
    if reports_dir.exists() and not reports_dir.is_dir():
        raise ValueError(f"--reports-dir {reports_dir}: exists and is not a folder")
    reports, runs = reports_dir.resolve(), runs_dir.resolve()
    if reports == runs or runs in reports.parents:
        raise ValueError(
            f"--reports-dir {reports_dir}: is the runs folder {runs_dir} or lies inside it; give a folder of its own"
        )
    if (inside := marked_parent(reports / "x")) is not None:
        raise ValueError(f"--reports-dir {reports_dir}: lies inside {inside}, a {kind_of(inside)} emotionlib made")
    check_location(reports_dir, "--reports-dir", D.protected_folders())  # nor the data folder or the cache


def make_report(cfg: Config, reports_dir: Path = Path("reports")) -> Path:
    """`make report`: execute notebooks 01-05 for one run and render reports/<run_id>/report.{html,pdf}."""
    t0 = time.time()
    check_reports_dir(Path(reports_dir), Path(cfg.runs_dir))
    check_config(cfg, cfg.run_dir)  # an existing run with other settings is refused before anything runs
    meta = RunLayout(cfg.run_dir).metadata
    ensemble = meta.is_file() and is_ensemble(
        read_metadata(meta.parent)
    )  # fitted already: only evaluate, interpret and render remain
    if not ensemble:
        check(cfg)  # languages, data, encoder and length, before a notebook or folder is made
    out = Path(reports_dir) / cfg.run_id
    failed = None
    with atomic_dir(
        out, "report"
    ) as tmp:  # a failed step leaves no half-written report folder (the run keeps its steps)
        execute_notebooks(cfg, tmp, NOTEBOOKS[2:] if ensemble else NOTEBOOKS)
        html = render_html(tmp / NOTEBOOKS[-1], tmp / "report.html")
        try:
            pdf = render_pdf(html, tmp / "report.pdf")
        except PdfFailed as exc:  # the HTML report is complete: keep it, and say where it is
            pdf, failed = None, exc.reason
        write_json(
            tmp / "render.json",
            {
                "run": cfg.run_id,
                "wall_seconds": round(time.time() - t0, 1),
                "pdf": pdf is not None,
                "pdf_error": failed,
            },
        )
    if failed:
        raise RuntimeError(f"the PDF could not be made ({failed}); the HTML report is at {out / 'report.html'}")
    print(f"report: {out / 'report.html'}" + (f" and {out / 'report.pdf'}" if pdf else " (no PDF)"), file=sys.stderr)
    return out
