import contextlib
import csv
import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from emotionlib import data as D
from emotionlib.split import label_proportions, split_train_val


# --- helpers: writing a split back, and labels to a vector (the inverse of data.from_vector) -----------------


def write_split(data: D.LangSplit, path: Path) -> Path:
    """Write a split in the official column layout; texts are written byte for byte."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text", *data.labels])
        for i, (rid, text) in enumerate(zip(data.ids, data.texts)):
            w.writerow([rid, text, *(data.y[i] if data.y is not None else [""] * len(data.labels))])
    return path


def to_vector(value, labels=D.LABELS) -> np.ndarray:
    """Human-readable labels ("joy", ["anger", "fear"], "Joy, Fear") -> 0/1 vector over `labels`."""
    names = value.split(",") if isinstance(value, str) else list(value)
    vec = np.zeros(len(labels), dtype=np.int64)
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        if name not in labels:
            raise D.DataError(f"label {name!r} is not among this language's labels ({', '.join(labels)})")
        vec[list(labels).index(name)] = 1
    return vec


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --- loading the official files ------------------------------------------------------------------


def test_header_decides_labels(data_dir):
    src = D.DataSource.resolve(data_dir)
    eng, afr, deu = src.load("train", "eng"), src.load("train", "afr"), src.load("train", "deu")
    assert eng.labels == ("anger", "fear", "joy", "sadness", "surprise")  # no disgust
    assert afr.labels == ("anger", "disgust", "fear", "joy", "sadness")  # no surprise
    assert deu.labels == D.LABELS
    assert eng.y.shape == (len(eng), 5) and set(np.unique(eng.y)) <= {0, 1}


def test_english_test_is_an_unlabeled_prediction_set(data_dir):
    test = D.DataSource.resolve(data_dir).load("test", "eng")
    assert not test.labeled and len(test) == 2765


def test_summary_lists_all_languages_and_ignores_other_files(data_dir):
    table = D.summary(D.DataSource.resolve(data_dir))
    assert list(table["lang"]) == list(D.LANGUAGES) and len(table) == 28
    assert "ron_track1_test" not in set(table["lang"])
    eng = table.set_index("lang").loc["eng"]
    assert (eng["train"], eng["dev"], eng["test"], bool(eng["test_labeled"])) == (2764, 115, 2765, False)
    assert np.isnan(eng["train_disgust"])  # absent, never a silent 0


def test_data_summary_cli(data_dir):
    from conftest import run_here

    out = run_here("data", "summary")
    assert out.returncode == 0, out.stderr
    assert sum(line.split()[0] in D.LANGUAGES for line in out.stdout.splitlines() if line.strip()) == 28
    assert "unlabeled test files (prediction sets): eng" in out.stdout


def test_round_trip_is_byte_for_byte_for_every_file(data_dir, tmp_path):
    src = D.DataSource.resolve(data_dir)
    for lang in D.LANGUAGES:
        for split in D.SPLITS:
            d = src.load(split, lang)
            with open(d.path, encoding="utf-8", newline="") as f:  # the texts as the csv module reads them
                raw = [row[1] for row in list(csv.reader(f))[1:]]
            assert d.texts == raw
            again = D.read_split(write_split(d, tmp_path / f"{split}_{lang}.csv"), lang=lang)
            assert again.texts == d.texts and again.ids == d.ids and again.labels == d.labels
            assert (again.y is None and d.y is None) or np.array_equal(again.y, d.y)


def test_round_trip_of_hard_texts(tmp_path):
    texts = [
        "line one\nline two",
        "she said \"no\", then 'yes'",
        "emoji 😀🎉",
        "ሰላም ዓለም",
        "नमस्ते",
        "你好",
        "привет",
        "مرحبا",
        "trailing space ",
        "\ttab",
        "",
    ]
    d = D.LangSplit(
        "eng", "train", [f"id{i}" for i in range(len(texts))], texts, ("joy",), np.zeros((len(texts), 1), dtype=int)
    )
    again = D.read_split(write_split(d, tmp_path / "eng.csv"))
    assert again.texts == texts


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,message",
    [
        ("text,joy\nhello,1\n", "missing column 'id'"),
        ("id,joy\na,1\n", "missing column 'text'"),
        ("id,text,joy\na,hello,2\n", r"row 1 \(id a\), column 'joy': value '2'"),
        ("id,text,joy\na,hello,yes\n", "not 0, 1 or empty"),
        ("id,text,joy\na,hello,1\nb,hi,0\na,again,1\n", "duplicate id 'a' in rows 1 and 3"),
        ("", "empty file"),
        ("id,text,joy\n", "no data rows"),
        ("id,text,happiness\na,hello,1\n", "unknown label column 'happiness'"),
        ("id,text,joy\na,hello,1\nb,hi,\n", "row 2 .* empty label cells"),
        ("id,text,joy\na,hello\n", "row 1 has 2 fields"),
    ],
)
def test_bad_files_are_rejected_with_file_and_row(tmp_path, content, message):
    path = write(tmp_path / "eng.csv", content)
    with pytest.raises(D.DataError, match=message) as err:
        D.read_split(path)
    assert str(path) in str(err.value)


def test_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path / "eng.csv", "id,text,joy\na,hello,1\n".encode() + b"b,caf\xe9,0\n")
    with pytest.raises(D.DataError, match=r"eng.csv: not UTF-8 .*line 3"):
        D.read_split(path)


def test_unknown_language_code(tmp_path):
    path = write(tmp_path / "xx.csv", "id,text,joy\na,hello,1\n")
    with pytest.raises(D.DataError, match="unknown language code 'xx'"):
        D.read_split(path)
    with pytest.raises(D.DataError, match="unknown language code 'klingon'"):
        D.expand_languages(["eng", "klingon"])


def test_unlabeled_file_loads_as_prediction_set(tmp_path):
    d = D.read_split(write(tmp_path / "eng.csv", "id,text,joy,fear\na,hello,,\nb,hi,,\n"))
    assert d.y is None and d.labels == ("fear", "joy")


# --- checksums and download ---------------------------------------------------------------------------


def test_checksum_mismatch_is_an_error(tmp_path, data_dir):
    shutil.copytree(data_dir / "track_a", tmp_path / "track_a")
    target = tmp_path / "track_a" / "dev" / "eng.csv"
    target.write_bytes(target.read_bytes().replace(b",0,", b",1,", 1))
    src = D.DataSource.resolve(tmp_path)
    with pytest.raises(D.DataError, match="checksum mismatch"):
        src.load("dev", "eng")
    assert src.load("dev", "deu").lang == "deu"  # the untouched files still load


@contextlib.contextmanager
def serving(directory: Path, monkeypatch, handler=http.server.SimpleHTTPRequestHandler):
    """An HTTP server on 127.0.0.1 for `directory`, with EMOTIONLIB_DATA_URL pointing at it."""
    h = functools.partial(handler, directory=str(directory))
    h.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("EMOTIONLIB_DATA_URL", f"http://127.0.0.1:{httpd.server_address[1]}/track_a")
    try:
        yield
    finally:
        httpd.shutdown()


class _HalfHandler(http.server.SimpleHTTPRequestHandler):
    """Announces the full length, sends half, then drops the connection."""

    def do_GET(self):
        body = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIONLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMOTIONLIB_DATA_DIR", raising=False)
    return tmp_path / "cache"


def _cached_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_download_verifies_and_caches(cache, data_dir, monkeypatch):
    with serving(data_dir, monkeypatch):
        src = D.DataSource.resolve()
        assert src.root is None
        d = src.load("dev", "eng")
        assert len(d) == 115 and d.path.is_relative_to(cache)
        assert D.sha256_of(d.path) == D.manifest()["track_a/dev/eng.csv"]
    assert src.load("dev", "eng").ids == d.ids  # now served from the cache with the server gone


def test_corrupted_download_is_rejected_and_not_cached(cache, data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    shutil.copytree(data_dir / "track_a", served / "track_a")
    f = served / "track_a" / "dev" / "eng.csv"
    f.write_bytes(f.read_bytes() + b"extra,row,0,0,0,0,0\n")
    with serving(served, monkeypatch), pytest.raises(D.DataError, match="checksum mismatch"):
        D.DataSource.resolve().load("dev", "eng")
    assert _cached_files(cache) == []


def test_interrupted_download_leaves_no_partial_file(cache, data_dir, monkeypatch):
    with serving(data_dir, monkeypatch, _HalfHandler), pytest.raises(D.DataError, match="interrupted|failed|checksum"):
        D.DataSource.resolve().load("train", "eng")
    assert _cached_files(cache) == []


# --- labels, split, dataset -------------------------------------------------------------------------------


def test_label_vectorisation_both_ways():
    eng = ("anger", "fear", "joy", "sadness", "surprise")
    assert to_vector("joy").tolist() == [0, 0, 0, 1, 0, 0]
    assert to_vector(["anger", "fear"]).tolist() == [1, 0, 1, 0, 0, 0]
    assert to_vector("Joy, Fear", eng).tolist() == [0, 1, 1, 0, 0]
    assert to_vector("", eng).tolist() == [0] * 5
    assert D.from_vector([0, 1, 1, 0, 0], eng) == ["fear", "joy"]
    with pytest.raises(D.DataError, match="'disgust' is not among"):
        to_vector("disgust", eng)


def test_split_keeps_label_shares_within_two_points(data_dir):
    full = D.DataSource.resolve(data_dir).load("train", "eng")
    tr, va = split_train_val(full, 0.2, seed=42)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == len(full)
    assert abs(len(va) / len(full) - 0.2) < 0.01
    table = label_proportions({"whole": full, "train": full.subset(tr), "val": full.subset(va)})
    assert (table[["train", "val"]].sub(table["whole"], axis=0).abs() <= 0.02).all().all(), table
    assert np.array_equal(split_train_val(full, 0.2, seed=42)[1], va)  # seeded
