"""The frozen-encoder mode's features (`freeze_layers: -1`): each text's pooled encoder output, computed once
without gradients and cached on disk, so that training the head costs one forward pass per text and runs that
share texts (the cross-lingual runs, other seeds) share the work."""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from emotionlib.dataset import Examples
from emotionlib.predict import autocast, batched_proba
from emotionlib.model import load_encoder, load_tokenizer
from emotionlib.runs import atomic_path, sha256_of

log = logging.getLogger(__name__)


def encoder_fingerprint(encoder_dir: Path, pooling: str, max_length: int, precision: str) -> str:
    """Names the cache: the encoder's weights and tokenizer (their sha256) and everything else that changes a
    feature."""
    parts = [sha256_of(f) for f in sorted(Path(encoder_dir).glob("*.safetensors"))]
    parts += [sha256_of(f) for f in sorted(Path(encoder_dir).glob("tokenizer*.json"))]
    parts += [pooling, str(max_length), precision]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


CHUNK = 4096  # texts per cache shard written during a pass: what an interruption can lose
FIRST_CHUNK = 256  # a short first shard, so that a long pass states the time it will take within seconds


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class FeatureCache:
    """Features by text (sha256 of its UTF-8), in safetensors shards under one folder per encoder fingerprint;
    each shard is written whole (atomically), so a killed run leaves only complete shards."""

    def __init__(self, folder: Path):
        from safetensors.torch import load_file

        self.folder = Path(folder)
        self.rows: dict[bytes, torch.Tensor] = {}
        for shard in sorted(self.folder.glob("*.safetensors")):
            t = load_file(shard)
            for key, row in zip(t["digests"].numpy(), t["features"]):
                self.rows[key.tobytes()] = row

    def add(self, digests: list[bytes], feats: torch.Tensor) -> None:
        from safetensors.torch import save_file

        if not digests:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = torch.from_numpy(np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32).copy())
        name = hashlib.sha256(b"".join(sorted(digests))).hexdigest()[:16]
        with atomic_path(self.folder / f"{name}.safetensors") as tmp:
            save_file({"digests": keys, "features": feats.contiguous()}, tmp)
        self.rows.update(zip(digests, feats))


def cached_pass(
    encode,
    tokenizer,
    texts: Sequence[str],
    width: int,
    max_length: int,
    batch_size: int,
    cache_dir: Path | None,
    progress: bool = True,
    desc: str = "features",
) -> torch.Tensor:
    """(n, width) float32 features of `texts` by `encode` (a Forward), each text encoded once: texts already in
    the cache under `cache_dir` are read from it, and the others are encoded shortest first in chunks of CHUNK
    texts (the first of FIRST_CHUNK, after which the time left is logged), each chunk written to the cache as soon
    as it is done, so an interrupted pass resumes where it stopped."""
    from tqdm.auto import tqdm

    texts = list(texts)
    cache = FeatureCache(cache_dir) if cache_dir else None
    rows = cache.rows if cache else {}
    digests = [_digest(t) for t in texts]
    todo = sorted({d: i for i, d in enumerate(digests) if d not in rows}.values(), key=lambda i: len(texts[i]))
    if progress and todo:
        log.info(f"{desc}: {len(todo)} of {len(texts)} texts to encode, {len(texts) - len(todo)} from the cache")
    started, chars, done_chars = time.time(), sum(len(texts[i]) for i in todo), 0
    with tqdm(total=len(todo), desc=desc, disable=not progress or not todo, dynamic_ncols=True) as bar:
        first = min(FIRST_CHUNK, CHUNK)
        stops = [first, *range(first + CHUNK, len(todo) + CHUNK, CHUNK)] if todo else []
        for start, stop in zip([0, *stops], stops):
            part = todo[start:stop]
            new = torch.from_numpy(
                batched_proba(encode, tokenizer, [texts[i] for i in part], width, max_length, batch_size)
            )
            if cache is None:
                rows.update(zip([digests[i] for i in part], new))
            else:
                cache.add([digests[i] for i in part], new)
            bar.update(len(part))
            done_chars += sum(len(texts[i]) for i in part)
            if progress and stop < len(todo):  # a line a chunk, for the terminal of a long pass
                elapsed = time.time() - started
                # shortest texts come first, so the time left is scaled by the characters left, not the texts
                left = elapsed * (chars - done_chars) / max(done_chars, 1)
                log.info(
                    f"{desc}: {start + len(part):,} of {len(todo):,} texts encoded, "
                    f"{(start + len(part)) / elapsed:.1f} texts/s; about {left / 60:.0f} min left"
                )
    return torch.stack([rows[d] for d in digests]) if texts else torch.zeros(0, width)


def pooled_features(
    model,
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
    precision: str = "no",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """(n, hidden) float32: what `model.head` reads for each text, in eval mode and without gradients; texts
    already in the cache under `cache_dir` are not encoded again."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    @torch.inference_mode()
    def forward(input_ids, attention_mask):
        with autocast(precision, device):
            return model.features(input_ids.to(device), attention_mask.to(device))[0].float().cpu().numpy()

    try:
        return cached_pass(
            forward, tokenizer, texts, model.head.in_features, max_length, batch_size, cache_dir, progress
        )
    finally:
        model.train(was_training)


class LayerFeatures:
    """For each text, the mean over its tokens (padding excluded) of a pretrained encoder's hidden states at
    `layers` (0 the embeddings, 1.. the layers, -1 the last), side by side: (n, len(layers) * hidden) float32, the
    frozen-feature member's input. The encoder is loaded once; texts already in a cache are not encoded again.
    `prompt` (an encoder's own task prefix, e.g. EmbeddingGemma's) is put before every text."""

    def __init__(
        self, encoder_dir: Path, layers: Sequence[int], max_length: int, precision: str = "no", prompt: str = ""
    ):
        self.encoder = load_encoder(Path(encoder_dir), "sdpa").eval()
        if precision == "int8":
            self.encoder = dynamic_int8(self.encoder)
        depth = self.encoder.config.num_hidden_layers
        if not layers or any(not -depth - 1 <= i <= depth for i in layers):
            raise ValueError(
                f"feature_layers {list(layers)}: each must be from {-depth - 1} to {depth} for "
                f"{encoder_dir} ({depth} layers)"
            )
        self.layers = [i % (depth + 1) for i in layers]
        self.tokenizer, self.max_length, self.precision = load_tokenizer(Path(encoder_dir)), max_length, precision
        self.width = self.encoder.config.hidden_size * len(self.layers)
        self.prompt, self.encoder_dir = prompt, Path(encoder_dir)
        self.pooling = "mean@" + ",".join(map(str, self.layers)) + (f"|prompt={prompt}" if prompt else "")
        self.fingerprint = encoder_fingerprint(encoder_dir, self.pooling, max_length, precision)

    def in_precision(self, precision: str) -> "LayerFeatures":
        """The same encoder and layers computing in `precision` (its own cache key): a copy sharing the weights."""
        if precision == self.precision:
            return self
        other = copy.copy(self)
        other.precision = precision
        if precision == "int8":
            other.encoder = dynamic_int8(self.encoder)  # a copy: this one keeps its float weights
        other.fingerprint = encoder_fingerprint(self.encoder_dir, self.pooling, self.max_length, precision)
        return other

    @torch.inference_mode()
    def _forward(self, input_ids, attention_mask) -> np.ndarray:
        device = next(self.encoder.parameters()).device
        with autocast(self.precision, device):
            states = self.encoder(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), output_hidden_states=True
            ).hidden_states
        m = attention_mask.to(device).unsqueeze(-1).float()
        return (
            torch.cat([(states[i].float() * m).sum(1) / m.sum(1).clamp_min(1.0) for i in self.layers], 1).cpu().numpy()
        )

    def __call__(
        self, texts: Sequence[str], cache_root: Path | None = None, batch_size: int = 64, progress: bool = True
    ) -> np.ndarray:
        """Features of `texts`; with `cache_root`, cached under cache_root/<fingerprint>/."""
        cache = Path(cache_root) / self.fingerprint if cache_root else None
        texts = [self.prompt + t for t in texts] if self.prompt else list(texts)
        return cached_pass(
            self._forward, self.tokenizer, texts, self.width, self.max_length, batch_size, cache, progress
        ).numpy()


def dynamic_int8(encoder: torch.nn.Module) -> torch.nn.Module:
    """A copy of `encoder` whose linear layers multiply in int8 (weights quantised per tensor once, activations per
    batch: PyTorch's dynamic quantisation, fbgemm's VNNI kernels where the CPU has them); the rest stays fp32."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's notice that the API is moving to torchao
        return torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)


def head_block(cfg, layers: list[int], depth: int) -> int | None:
    """Which block of the features the network's head reads, when it is a frozen-encoder network that reads the
    mean-pooled last layer of the same encoder; else None (the network encodes texts itself)."""
    if cfg.freeze_layers == -1 and cfg.head == "linear" and cfg.pooling == "mean" and depth in layers:
        return layers.index(depth)
    return None


class FeatureDataset(torch.utils.data.Dataset):
    """The frozen-encoder mode's training rows: a text's pooled features with its labels and label mask (and its
    language id, for a classifier with parts per language)."""

    def __init__(self, features: torch.Tensor, examples: Examples, lang_ids: torch.Tensor | None = None):
        self.features, self.examples, self.lang_ids = features, examples, lang_ids

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        item = {
            "features": self.features[i],
            "labels": torch.from_numpy(self.examples.y[i]),
            "label_mask": torch.from_numpy(self.examples.mask[i]),
        }
        if self.lang_ids is not None:
            item["lang_ids"] = self.lang_ids[i]
        return item


class HeadOnly(torch.nn.Module):
    """The classifier's head alone (with its parts per language), on precomputed features; it shares the
    classifier's parameters, and its state holds only them."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.head = classifier.head
        for name in ("language_bias", "language_weight"):
            if hasattr(classifier, name):
                setattr(self, name, getattr(classifier, name))
        self._logits = classifier.logits  # a bound method: the encoder is not registered here

    def logits(self, features: torch.Tensor, lang_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._logits(features, lang_ids)

    forward = logits
