"""The tiny XLM-R (`model: tiny-xlmr`): a randomly initialised 2-layer XLM-R with a Unigram tokenizer trained
locally on BRIGHTER texts, built once into the cache. For tests and the smoke profile; its scores mean nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from emotionlib.data import LANGUAGES, DataSource, cache_dir
from emotionlib.encoders.base import Encoder

TINY_XLMR = "tiny-xlmr"
TINY_VERSION = "v1"


def build_tiny_xlmr(out_dir: Path, texts: Sequence[str], vocab_size: int = 8000, seed: int = 0) -> Path:
    """A randomly initialised 2-layer XLM-R with a Unigram tokenizer trained locally on `texts`.

    It exercises the XLM-R code path (<s>, </s>, <pad>, first-token pooling) without any download.
    """
    import torch
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..3 order
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(
        list(texts), vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    sp.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", sp.token_to_id("<s>")), ("</s>", sp.token_to_id("</s>"))],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=sp,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
    )
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


def tiny_xlmr_dir() -> Path:
    """Build the tiny XLM-R once into the cache (atomically, so parallel processes agree) and return it."""
    target = cache_dir() / f"{TINY_XLMR}-{TINY_VERSION}"
    if (target / "config.json").is_file():
        return target
    source = DataSource.resolve()
    texts = [t for lang in LANGUAGES for t in source.load("train", lang).texts[:200]]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build_tiny_xlmr(tmp, texts)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


ENCODER = Encoder(
    TINY_XLMR, "a tiny randomly initialised 2-layer XLM-R (for tests; its scores mean nothing)", tiny_xlmr_dir
)
