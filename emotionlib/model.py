"""The classifier (encoder + linear head on the first token), encoder resolution, saving and loading."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from emotionlib.metadata import is_ensemble, read_metadata
from emotionlib.runs import atomic_dir

POOLINGS = ("cls", "mean")
LANGUAGE_HEADS = ("none", "bias", "head")


class EmotionClassifier(nn.Module):
    """Seed section 2 (`head: linear`): logits = h W^T + b, h the encoder's first-token embedding (`pooling:
    cls`, the seed's) or the mean of its token embeddings (`pooling: mean`).

    `head_per_language` adds to the shared head, for each training language, its own bias vector (`bias`: its
    label priors) or its own linear layer and bias (`head`), zero at the start and trained jointly. A text of
    another language (language id -1, or no ids at all) gets the shared head alone."""

    head_kind = "linear"

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        pooling: str = "cls",
        languages: Sequence[str] = (),
        head_per_language: str = "none",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: must be one of {POOLINGS}")
        if head_per_language not in LANGUAGE_HEADS:
            raise ValueError(f"head_per_language {head_per_language!r}: must be one of {LANGUAGE_HEADS}")
        if head_per_language != "none" and not languages:
            raise ValueError("head_per_language needs the training languages")
        self.encoder, self.pooling = encoder, pooling
        hidden = encoder.config.hidden_size
        self.head = nn.Linear(hidden, num_labels)
        self.head_per_language = head_per_language
        self.languages = list(languages) if head_per_language != "none" else []
        if head_per_language != "none":
            self.language_bias = nn.Parameter(torch.zeros(len(self.languages), num_labels))
        if head_per_language == "head":
            self.language_weight = nn.Parameter(torch.zeros(len(self.languages), num_labels, hidden))

    @property
    def num_labels(self) -> int:
        return self.head.out_features

    def language_ids(self, langs: Sequence[str]) -> torch.Tensor:
        """Each text's language as the index of its per-language parts (-1: a language without them)."""
        index = {lang: i for i, lang in enumerate(self.languages)}
        return torch.tensor([index.get(lang, -1) for lang in langs], dtype=torch.long)

    def logits(self, pooled: torch.Tensor, lang_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The head on pooled features: the shared layer, plus each row's language's own parts."""
        out = self.head(pooled)
        if not self.languages or lang_ids is None:
            return out
        lang_ids = lang_ids.to(pooled.device)
        idx = lang_ids.clamp_min(0)
        extra = self.language_bias[idx]
        if self.head_per_language == "head":
            extra = extra + torch.einsum("nh,nch->nc", pooled, self.language_weight[idx].to(pooled.dtype))
        return out + extra.to(out.dtype) * (lang_ids >= 0).unsqueeze(1).to(out.dtype)

    def forward(self, input_ids, attention_mask, output_attentions: bool = False, lang_ids=None, **_: Any):
        pooled, attentions = self.features(input_ids, attention_mask, output_attentions)
        logits = self.logits(pooled, lang_ids)
        return (logits, attentions) if output_attentions else logits

    def features(self, input_ids, attention_mask, output_attentions: bool = False):
        """What the head reads (batch, hidden), and the attentions when asked for."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions)
        h = out.last_hidden_state
        if self.pooling == "mean":  # the mean over the text's tokens (padding excluded), as multilingual-e5 embeds
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp_min(1.0), out.attentions
        return h[:, 0], out.attentions  # the seed's: the first token


class AutoHeadClassifier(nn.Module):
    """`head: auto`: the encoder's own sequence-classification model (BERT: pooler dense + tanh, then a linear
    layer; XLM-R: dense + tanh + projection), so a trained run exports to a standard transformers folder."""

    head_kind = "auto"

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @property
    def encoder(self) -> nn.Module:  # the bare encoder, for the attention views
        return self.net.base_model

    @property
    def num_labels(self) -> int:
        return self.net.config.num_labels

    def forward(self, input_ids, attention_mask, output_attentions: bool = False, **_: Any):
        out = self.net(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions)
        return (out.logits, out.attentions) if output_attentions else out.logits


def freeze_lower(model: nn.Module, layers: int, word_embeddings: bool = False) -> int:
    """Freeze the encoder's embeddings and its lowest `layers` layers (-1: the whole encoder), so that no
    gradient is computed below the first trainable layer, and with `word_embeddings` its token embedding table
    alone; returns the number of trainable parameters."""
    encoder = getattr(model, "encoder", None)
    if word_embeddings:
        # the table is the largest single gradient (MiniLM: 47 MB, half its weights), written at every step for
        # the few rows a batch uses
        encoder.get_input_embeddings().requires_grad_(False)
    if encoder is not None and hasattr(encoder, "embed_tokens"):
        # a Gemma3 encoder: its 262,144-token embedding table (2/3 of EmbeddingGemma) always stays frozen; its
        # AdamW state alone would be 2.4 GB
        encoder.embed_tokens.requires_grad_(False)
    if layers:
        stack = layer_stack(encoder)
        if stack is None:
            raise ValueError(f"freeze_layers: {type(encoder).__name__} has no layer stack to freeze")
        if layers > len(stack):
            raise ValueError(f"freeze_layers: {layers} exceeds the encoder's {len(stack)} layers")
        embeddings = getattr(encoder, "embeddings", None) or encoder.embed_tokens
        frozen = (
            list(encoder.parameters())
            if layers == -1
            else [*embeddings.parameters(), *(p for layer in stack[:layers] for p in layer.parameters())]
        )
        for p in frozen:
            p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_stack(encoder: nn.Module):
    """The encoder's list of layers: BERT-style `encoder.layer`, or Gemma's `layers`."""
    return getattr(getattr(encoder, "encoder", None), "layer", None) or getattr(encoder, "layers", None)


def label_config(labels: Sequence[str]) -> dict[str, Any]:
    """The standard multi-label fields of a transformers config, so pipelines apply a sigmoid and name labels."""
    return {
        "num_labels": len(labels),
        "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(labels)),
        "label2id": {lab: i for i, lab in enumerate(labels)},
    }


def attention_for(config, wanted: str) -> str:
    """`wanted`, or "eager" for an architecture that has no sdpa kernel in transformers (MPNet)."""
    from transformers import MODEL_MAPPING

    if wanted == "sdpa" and not getattr(MODEL_MAPPING.get(type(config), None), "_supports_sdpa", True):
        return "eager"
    return wanted


def build_classifier(
    encoder_dir: Path,
    labels: Sequence[str],
    head: str = "linear",
    attn_implementation: str = "sdpa",
    pooling: str = "cls",
    languages: Sequence[str] = (),
    head_per_language: str = "none",
) -> nn.Module:
    """A classifier on the pretrained encoder in `encoder_dir`, with the seed's linear head (and optionally parts
    per language) or the encoder's own."""
    from transformers import AutoConfig

    attn_implementation = attention_for(AutoConfig.from_pretrained(encoder_dir), attn_implementation)
    if head == "linear":
        return EmotionClassifier(
            load_encoder(encoder_dir, attn_implementation), len(labels), pooling, languages, head_per_language
        )
    from transformers import AutoModelForSequenceClassification

    with _quiet_transformers():  # the new head's weights are expected to be missing from the checkpoint
        net = AutoModelForSequenceClassification.from_pretrained(
            encoder_dir, attn_implementation=attn_implementation, use_safetensors=True, **label_config(labels)
        )
    return AutoHeadClassifier(net)


def load_encoder(folder: Path, attn_implementation: str = "sdpa") -> nn.Module:
    """The pretrained encoder without its pooler (unused here, and unused parameters break DDP)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder)
    kwargs = {"attn_implementation": attention_for(config, attn_implementation), "add_pooling_layer": False}
    with _quiet_transformers():  # the skipped pooler weights are expected, not worth a warning table
        try:
            return AutoModel.from_pretrained(folder, config=config, use_safetensors=True, **kwargs)
        except TypeError:  # an architecture without a pooler argument
            kwargs.pop("add_pooling_layer")
            return AutoModel.from_pretrained(folder, config=config, use_safetensors=True, **kwargs)


@contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(folder: Path):
    """The tokenizer of an encoder or a saved model folder; a missing or unreadable one is one line naming it."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if (folder / "metadata.json").is_file() and not (folder / "tokenizer.json").is_file():
        raise ValueError(f"{folder / 'tokenizer.json'}: missing; the saved model is damaged")
    try:
        return AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # tokenizers and transformers raise their own types for a damaged file
        said = " ".join(str(exc).split())[:200]
        raise ValueError(f"{folder}: its tokenizer files cannot be read ({type(exc).__name__}: {said})") from None


# --- saving and loading a trained classifier ---------------------------------------------------------


def save_model(model: EmotionClassifier, tokenizer, out_dir: Path, metadata: dict[str, Any]) -> Path:
    """safetensors weights + encoder config + tokenizer + metadata.json, swapped into place atomically."""
    from safetensors.torch import save_file

    with atomic_dir(out_dir, "model") as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        (model.net.config if isinstance(model, AutoHeadClassifier) else model.encoder.config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
    return Path(out_dir)


def load_model(model_dir: Path, attn_implementation: str = "sdpa"):
    """(model in eval mode, tokenizer, metadata) from a folder written by save_model; no pickles are read."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    if is_ensemble(meta):
        raise ValueError(f"{model_dir}: an ensemble has no network of its own; load its run with emotionlib.load")
    weights = model_dir / "model.safetensors"
    config = AutoConfig.from_pretrained(model_dir)
    attn_implementation = attention_for(config, attn_implementation)
    config._attn_implementation = attn_implementation
    if meta.get("head", "linear") == "auto":
        model = AutoHeadClassifier(
            AutoModelForSequenceClassification.from_config(config, attn_implementation=attn_implementation)
        )
    else:
        try:
            encoder = AutoModel.from_config(config, add_pooling_layer=False, attn_implementation=attn_implementation)
        except TypeError:
            encoder = AutoModel.from_config(config, attn_implementation=attn_implementation)
        per_language = meta.get("head_per_language", "none")
        model = EmotionClassifier(
            encoder,
            len(meta["labels"]),
            meta.get("pooling", "cls"),
            meta.get("languages", []) if per_language != "none" else (),
            per_language,
        )
    try:
        state = load_file(weights)
    except Exception as exc:  # safetensors raises its own error type for a truncated or empty file
        raise ValueError(
            f"{weights}: not a readable safetensors file ({exc}); the run's model is damaged, train it again"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # weights of another architecture or head: torch's message is kilobytes long
        first = " ".join(str(exc).split())[:160]
        raise ValueError(
            f"{weights}: its tensors do not fit the model {model_dir / 'metadata.json'} describes (head "
            f"{meta.get('head', 'linear')!r}; {first}...); the run's model is damaged, train it again"
        ) from None
    model.eval()
    return model, load_tokenizer(model_dir), meta
