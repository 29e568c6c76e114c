"""Seed section 3.2 on Hugging Face Accelerate: the same loop on CPU, one GPU (mixed precision) or DDP."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import resource
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.profiler import record_function

from emotionlib.log import main_info
from emotionlib import data as D

from emotionlib import dataset as DS
from emotionlib import distill
from emotionlib.encoders import provenance_of
from emotionlib.augment import augment_training
from emotionlib.config import Config
from emotionlib.run_config import check_config, claim_config
from emotionlib.split import prepare_data, training_parts
from emotionlib import optim
from emotionlib.sampling import EpochSampler, language_shares
from emotionlib.losses import class_balanced_weights, difficulty_weights, make_loss, positive_weights
from emotionlib.checkpoints import Ema, Progress, checkpoint_state, restore, save_checkpoint
from emotionlib.hardware import ThreadGovernor, resolve_precision, threads_for_free_cores
from emotionlib.features import (
    FeatureDataset,
    HeadOnly,
    LayerFeatures,
    encoder_fingerprint,
    head_block,
    pooled_features,
)
from emotionlib.metrics import label_f1, language_scores, tune_thresholds
from emotionlib.metadata import check_weights, read_finished, update_metadata
from emotionlib.model import build_classifier, freeze_lower, load_model, load_tokenizer, save_model
from emotionlib.predict import decide, predict_proba
from emotionlib.preflight import check
from emotionlib.runs import (
    MARKER,
    RunLayout,
    atomic_dir,
    atomic_path,
    check_removable,
    read_json,
    record_written,
    remove_owned,
    run_lock,
    sha256_of,
    write_json,
)
from emotionlib.provenance import provenance
from emotionlib.run_records import seal
from emotionlib.plots import training_curves

log = logging.getLogger(__name__)


def label_space(parts: list[D.LangSplit]) -> tuple[str, ...]:
    """One file's labels as it orders them; for several languages their union in BRIGHTER's canonical order."""
    if len({p.labels for p in parts}) == 1:
        return parts[0].labels
    present = {lab for p in parts for lab in p.labels}
    return tuple(lab for lab in D.LABELS if lab in present)


def train(cfg: Config, resume: bool = False, retrain: bool = False) -> Path:
    """Train, keep the best epoch by validation macro-F1, tune thresholds on validation; return the run dir.

    A run already trained with the same settings is left as it is (the step is skipped) once its weights are
    checked; an interrupted one continues with `resume=True` from its last checkpoint, or starts over cleanly when
    it has none. `retrain=True` trains a finished (or damaged) run again in place: its model, checkpoint and
    training log go first, by their exact names; evaluation and interpretation then see new weights and rerun.
    """
    started = time.time()
    encoder_dir = check(cfg)  # fails here, before anything is written, with what to fix
    # the threads are decided again every second while it trains (hardware.ThreadGovernor); several processes
    # (accelerate launch) keep the count they start with
    governor = ThreadGovernor(
        cfg.num_threads or (threads_for_free_cores() if os.environ.get("WORLD_SIZE", "1") != "1" else 0)
    )
    layout = RunLayout(cfg.run_dir)
    done = layout.train_summary.is_file()
    precision = resolve_precision(cfg.mixed_precision)  # what the run trains, records and predicts with
    accelerator = _accelerator(precision, cfg.torch_compile and cfg.freeze_layers != -1)
    main = accelerator.is_main_process
    with run_lock(layout) if main else contextlib.nullcontext():
        if main and retrain:
            check_config(cfg, layout.root)  # only a run of these settings is retrained
            for folder, kind in ((layout.model, "model"), (layout.checkpoint, "checkpoint")):
                check_removable(folder, kind)  # a file a user put there is named, and nothing goes
            _clear_training(layout)
            done = False
        if main:
            _claim(cfg, layout, resume, done)
        accelerator.wait_for_everyone()
        if done:
            check_weights(layout)  # damaged weights are named, with the command that retrains the run
            main_info(log, accelerator, f"{layout.root}: already trained with these settings; training skipped")
            return layout.root
        return _train(cfg, layout, accelerator, encoder_dir, precision, resume, started, governor)


def adopt(cfg: Config, source: Path) -> Path:
    """The run's own network without training it again: a finished network of the same settings (the first of the
    stack's fold networks, trained on the training part without one fold) copied in as the run's model, its
    training log and curves with it, and recorded as adopted (provenance.json and train_summary.json name the
    source). What a run needs of a network of its own beside its stack (LIME, the attention views, the network-alone
    line) then costs no training. A run already finished is left as it is once its weights are checked."""
    import shutil

    check(cfg)
    layout, src = RunLayout(cfg.run_dir), RunLayout(source)
    with run_lock(layout):
        claim_config(cfg, layout.root)
        if layout.train_summary.is_file():
            check_weights(layout)
            return layout.root
        prepare_data(cfg, layout)
        read_finished(src.root)  # finished, and its files as its training wrote them
        with atomic_dir(layout.model, "model") as tmp:
            for f in sorted(src.model.iterdir()):
                if f.is_file() and f.name != MARKER:
                    shutil.copyfile(f, tmp / f.name)
        for a, b in ((src.train_log, layout.train_log), (src.training_curves, layout.training_curves)):
            with atomic_path(b) as tmp:
                shutil.copyfile(a, tmp)
        adopted = {
            "adopted_from": str(src.root.relative_to(layout.root))
            if layout.root in src.root.parents
            else str(src.root),
            "adopted_why": "the stack's fold network 0: nothing is trained twice",
        }
        write_json(layout.provenance, read_json(src.provenance) | adopted)
        write_json(layout.train_summary, read_json(src.train_summary) | adopted)
        seal(layout)
    log.info(f"{layout.root}: its network is {src.root} (adopted, not trained again)")
    return layout.root


def _accelerator(precision: str, compile_model: bool = False):
    """An Accelerator in this precision, compiling the model in `prepare` when asked (regional compilation: one
    encoder layer is compiled and reused for the others, so compiling takes seconds, not minutes). Accelerate
    keeps one state per process, so a later run in the same process (a notebook kernel, the cross-lingual runs)
    with another precision or compilation resets that part; the process group and device (PartialState) are
    kept."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DynamoBackend, TorchDynamoPlugin

    dynamo = TorchDynamoPlugin(
        backend="inductor" if compile_model else "no",
        dynamic=True,
        use_regional_compilation=True if compile_model else None,
    )
    state = AcceleratorState._shared_state
    compiled = getattr(state.get("dynamo_plugin"), "backend", DynamoBackend.NO) != DynamoBackend.NO
    if state and (state.get("_mixed_precision") != precision or compiled != compile_model):
        AcceleratorState._reset_state()
    # cpu=True on a host without CUDA makes torchrun-style launches (LOCAL_RANK set) use gloo DDP on CPU
    return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available(), dynamo_plugin=dynamo)


def _clear_training(layout: RunLayout) -> None:
    """What training wrote, removed by exact name (folders only if emotionlib made them as such)."""
    for path in (
        layout.manifest,
        layout.train_log,
        layout.train_summary,
        layout.training_curves,
        layout.teacher,
        layout.teacher_targets,
    ):  # transfer.json and its targets stay: keyed by teacher and texts, reused
        path.unlink(missing_ok=True)
    remove_owned(layout.model, "model")
    remove_owned(layout.checkpoint, "checkpoint")


def _claim(cfg: Config, layout: RunLayout, resume: bool, done: bool) -> None:
    """The main process's guards: same settings as the run's, a split, and no debris of a killed attempt."""
    claim_config(cfg, layout.root)
    if done:
        return
    prepare_data(cfg, layout)
    if layout.model.exists() and not resume:
        raise FileExistsError(f"{layout.root}: training was interrupted; pass --resume to continue it")
    if not (resume and checkpoint_state(layout.checkpoint) is not None):  # from the beginning: no stale epochs
        _clear_training(layout)


@dataclasses.dataclass
class Inputs:
    """What the loop iterates and trains, and how validation gets its probabilities (`_training_inputs`)."""

    train_ds: torch.utils.data.Dataset
    model: torch.nn.Module  # the classifier, or in the frozen-encoder mode its head alone on cached features
    sampler: EpochSampler
    collate: Callable | None
    val_proba: Callable[[torch.nn.Module], np.ndarray]
    feature_seconds: float | None  # the frozen-encoder mode's feature pass (0 when all were cached)


@dataclasses.dataclass
class Setup:
    """Everything one training needs, made once before its first epoch (`_setup`)."""

    classifier: torch.nn.Module
    tokenizer: Any
    labels: tuple[str, ...]
    train_ex: DS.Examples
    val_ex: DS.Examples
    inputs: Inputs
    train_dl: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Callable
    label_weights: torch.Tensor | None
    ema: Ema | None
    progress: Progress
    plain: torch.nn.Module  # what is checkpointed and validated: never the DDP wrapper or the compiled regions
    model: torch.nn.Module  # what trains: `plain` as the accelerator prepared it
    meta: dict


def _classifier(cfg: Config, encoder_dir: Path, labels) -> tuple[torch.nn.Module, int]:
    """The classifier, its head drawn after the seed is set, with its lower layers frozen as the config says; and
    the number of its trainable parameters."""
    torch.manual_seed(cfg.seed)
    classifier = build_classifier(
        encoder_dir,
        labels,
        cfg.head,
        pooling=cfg.pooling,
        languages=D.train_languages(cfg),
        head_per_language=cfg.head_per_language,
    )
    return classifier, freeze_lower(classifier, cfg.freeze_layers, cfg.freeze_word_embeddings)


def _record_provenance(
    cfg: Config,
    layout: RunLayout,
    accelerator,
    encoder_dir: Path,
    precision: str,
    train_ex: DS.Examples,
    val_ex: DS.Examples,
    fitted_ex: DS.Examples,
    inputs: Inputs,
    augmented: int,
    trainable: int,
) -> None:
    """provenance.json of this training: what it was given and what it decided (precision, rows, processes)."""
    write_json(
        layout.provenance,
        run_provenance(
            cfg,
            layout,
            encoder_dir,
            train_ex,
            len(inputs.train_ds),
            {
                "n_val": len(val_ex.ids),
                "augmented_rows": augmented,
                "trainable_parameters": trainable,
                "transfer_rows": len(fitted_ex.ids) - len(train_ex.ids),
                "feature_seconds": inputs.feature_seconds,
                "mixed_precision": precision,
                "processes": accelerator.num_processes,
                "distilled_from": teacher_record(layout) if cfg.teacher else None,
            },
        ),
    )


def _setup(cfg: Config, layout: RunLayout, accelerator, encoder_dir: Path, precision: str, resume: bool) -> Setup:
    """The data, the classifier, its inputs, the optimiser, the loss and the state to resume, in the order that
    makes a seed's run the same every time (the seed is set before the classifier's head is drawn)."""
    train_parts, val_parts = training_parts(cfg, layout)
    train_parts, augmented = augment_training(cfg, train_parts, encoder_dir)  # the training part only
    labels = label_space(train_parts)
    tokenizer = load_tokenizer(encoder_dir)
    train_ex, val_ex = DS.Examples.from_splits(train_parts, labels), DS.Examples.from_splits(val_parts, labels)
    classifier, trainable = _classifier(cfg, encoder_dir, labels)
    # a distilled student learns soft targets; the label weights below stay those of the gold labels
    fitted_ex = train_ex
    if cfg.teacher:  # with transfer texts, rows that learn the teacher's probabilities alone follow
        fitted_ex = distill.concat(
            dataclasses.replace(train_ex, y=distill.targets(cfg, layout, train_parts, val_parts, train_ex)),
            distill.transfer_examples(cfg, layout, train_ex, val_parts),
        )
    inputs = _training_inputs(cfg, classifier, tokenizer, fitted_ex, val_ex, encoder_dir, precision)
    train_dl, optimizer, scheduler = optim.optimisation(
        cfg, inputs.model, inputs.train_ds, inputs.sampler, inputs.collate, accelerator.num_processes
    )
    pos_weight = positive_weights(train_ex.y, train_ex.mask) if cfg.pos_weight else None
    label_weights = initial_label_weights(cfg, train_ex)
    loss_fn = make_loss(cfg.loss, cfg.focal_alpha, cfg.focal_gamma, pos_weight, label_weights)
    ema = Ema(inputs.model, cfg.ema_decay) if cfg.ema_decay else None
    progress = restore(layout, inputs.model, optimizer, scheduler, accelerator, ema) if resume else Progress()
    if label_weights is not None and progress.label_weights is not None:
        label_weights.copy_(torch.tensor(progress.label_weights))
    model, optimizer, train_dl, scheduler = accelerator.prepare(inputs.model, optimizer, train_dl, scheduler)
    if accelerator.is_main_process:
        _record_provenance(
            cfg, layout, accelerator, encoder_dir, precision, train_ex, val_ex, fitted_ex, inputs, augmented, trainable
        )
    return Setup(
        classifier,
        tokenizer,
        labels,
        train_ex,
        val_ex,
        inputs,
        train_dl,
        optimizer,
        scheduler,
        loss_fn,
        label_weights,
        ema,
        progress,
        inputs.model,
        model,
        model_metadata(cfg, encoder_dir, precision, labels),
    )


def _epoch_entry(s: Setup, progress: Progress, probs: np.ndarray, epoch: int, seen: int, seconds: float) -> dict:
    """The training log's line of an epoch: its losses, validation figures, learning rate, speed and threads."""
    return {
        "epoch": epoch + 1,
        "train_loss": progress.loss_sum / max(progress.step_in_epoch, 1),
        **_validate(probs, s.val_ex, s.loss_fn),
        "lr": s.scheduler.get_last_lr()[0],
        "train_seconds": round(seconds, 2),
        "train_examples_per_second": round(seen / seconds, 2),
        "threads": torch.get_num_threads(),
    }


def _train(
    cfg: Config,
    layout: RunLayout,
    accelerator,
    encoder_dir: Path,
    precision: str,
    resume: bool,
    started: float,
    governor: ThreadGovernor | None = None,
) -> Path:
    """The epochs: train, validate, keep the best, checkpoint; then thresholds and the run's summary."""
    main = accelerator.is_main_process
    s = _setup(cfg, layout, accelerator, encoder_dir, precision, resume)
    progress = s.progress

    def checkpoint() -> None:
        rng = accelerator.gather(torch.get_rng_state().unsqueeze(0).to(accelerator.device)).cpu()
        if main:
            save_checkpoint(layout.checkpoint, s.plain, s.optimizer, s.scheduler, progress, rng, s.ema)
        accelerator.wait_for_everyone()

    best_probs = None  # the best epoch's validation probabilities, when this process computed them
    while progress.epoch < cfg.epochs and not progress.done:
        epoch = progress.epoch
        t0 = time.time()
        seen = _train_epoch(cfg, accelerator, s, progress, checkpoint, governor)
        train_seconds = time.time() - t0
        with s.ema.applied() if s.ema else contextlib.nullcontext():  # the average is what is validated and kept
            probs = s.inputs.val_proba(s.plain)
            entry = _epoch_entry(s, progress, probs, epoch, seen, train_seconds)
            _end_epoch(
                cfg,
                layout,
                accelerator,
                progress,
                entry,
                s.label_weights,
                lambda: save_model(s.classifier, s.tokenizer, layout.model, s.meta | {"best_epoch": epoch + 1}),
            )
            if progress.best_epoch == epoch + 1:  # this epoch was saved as the best
                best_probs = probs  # the saved model's, so the thresholds need no second pass over validation
        checkpoint()

    if main:
        _finish(layout, s.val_ex, progress, started, s.inputs.val_proba, best_probs)
        remove_owned(layout.checkpoint, "checkpoint")
    accelerator.wait_for_everyone()
    return layout.root


def run_provenance(
    cfg: Config, layout: RunLayout, encoder_dir: Path, train_ex: DS.Examples, n_train: int, facts: dict
) -> dict:
    """provenance.json of a training run: the run's own `facts` beside the seed, encoder, sampling and data."""
    return provenance(
        {
            "seed": cfg.seed,
            "encoder_dir": str(encoder_dir),
            **encoder_provenance(cfg.model),
            "n_train": n_train,
            **facts,
            "language_rows_per_epoch": language_shares(train_ex.langs, cfg.language_temperature),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "data": read_json(layout.split)["checksums"],
        }
    )


def teacher_record(layout: RunLayout) -> dict:
    """What provenance.json says of a distilled run's teacher: teacher.json without the row ids."""
    return {k: v for k, v in read_json(layout.teacher).items() if k != "ids"}


def model_metadata(cfg: Config, encoder_dir: Path, precision: str, labels) -> dict:
    """What a saved model records of how it was built (model/metadata.json; its thresholds tuned at the end)."""
    return {
        "encoder": cfg.model,
        "encoder_dir": str(encoder_dir),
        "head": cfg.head,
        "pooling": cfg.pooling,
        "head_per_language": cfg.head_per_language,
        "freeze_layers": cfg.freeze_layers,
        "mixed_precision": precision,
        "labels": list(labels),
        "languages": D.train_languages(cfg),
        "max_length": cfg.max_length,
        "thresholds": [0.5] * len(labels),
        **({"distilled_from": cfg.teacher, "distill_weight": cfg.distill_weight} if cfg.teacher else {}),
    }


def encoder_provenance(model: str) -> dict:
    """Where the encoder's weights came from, where that is more than its name (its module says)."""
    return provenance_of(model)


def _end_epoch(
    cfg: Config, layout: RunLayout, accelerator, progress: Progress, entry: dict, label_weights, save_best
) -> None:
    """An epoch's bookkeeping: the next epoch's label weights, the best model kept (`save_best`), the log line,
    and early stopping."""
    epoch, f1 = entry["epoch"], entry["val_label_f1"]
    entry["val_label_f1"] = [None if np.isnan(v) else round(float(v), 4) for v in f1]
    if cfg.loss_weighting == "dynamic":  # the next epoch weighs each label by its validation difficulty
        label_weights.copy_(torch.tensor(difficulty_weights(np.nan_to_num(f1), ~np.isnan(f1), cfg.difficulty_tau)))
        progress.label_weights = label_weights.tolist()
    if label_weights is not None:  # the weights the next epoch trains with
        entry["label_weights"] = [round(w, 4) for w in label_weights.tolist()]
    improved = record_epoch(progress, entry["val_macro_f1"], epoch)
    if improved and accelerator.is_main_process:
        save_best()
    left = (cfg.epochs - epoch) * entry["train_seconds"]  # at this epoch's pace; early stopping may end sooner
    main_info(
        log,
        accelerator,
        f"epoch {epoch}/{cfg.epochs}: train_loss {entry['train_loss']:.4f} val_loss {entry['val_loss']:.4f} "
        f"val_macro_f1 {entry['val_macro_f1']:.4f}{' (best)' if improved else ''}, "
        f"{entry['train_examples_per_second']:.0f} examples/s, {entry['train_seconds']:.0f} s; about "
        f"{left / 60:.0f} min of training left",
    )
    if accelerator.is_main_process:
        with open(layout.train_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        record_written(layout.train_log)
    progress.epoch, progress.step_in_epoch, progress.loss_sum = epoch, 0, 0.0
    if cfg.patience and progress.stale_epochs >= cfg.patience:
        main_info(log, accelerator, f"early stopping: no validation gain for {cfg.patience} epochs")
        progress.done = True


def _training_inputs(
    cfg: Config, classifier, tokenizer, train_ex: DS.Examples, val_ex: DS.Examples, encoder_dir: Path, precision: str
) -> Inputs:
    """What the loop iterates and trains, and how validation gets its probabilities: texts through the whole
    classifier, or in the frozen-encoder mode cached features through the head alone (then also the seconds
    the features took, 0 when all were cached)."""
    per_language = bool(getattr(classifier, "languages", None))
    train_ids = classifier.language_ids(train_ex.langs) if per_language else None
    if cfg.freeze_layers != -1:
        train_ds = DS.EmotionDataset(
            train_ex, tokenizer, cfg.max_length, cfg.pad_to_max_length, train_ids.tolist() if per_language else None
        )
        sampler = EpochSampler(
            train_ds.lengths, cfg.batch_size, cfg.seed, cfg.group_by_length, train_ex.langs, cfg.language_temperature
        )

        def val_proba(m) -> np.ndarray:
            return predict_proba(
                m, tokenizer, val_ex.texts, cfg.max_length, cfg.eval_batch_size, precision=precision, langs=val_ex.langs
            )

        return Inputs(train_ds, classifier, sampler, DS.Collator(tokenizer.pad_token_id), val_proba, None)
    t0 = time.time()
    feats = frozen_features(cfg, classifier, tokenizer, train_ex.texts + val_ex.texts, encoder_dir, precision)
    train_feats, val_feats = feats[: len(train_ex.texts)], feats[len(train_ex.texts) :]
    train_ds = FeatureDataset(train_feats, train_ex, train_ids)
    val_ids = classifier.language_ids(val_ex.langs) if per_language else None

    def head_proba(m) -> np.ndarray:  # m: the head being trained, or the saved classifier
        with torch.inference_mode():
            return torch.sigmoid(m.logits(val_feats, val_ids)).numpy()

    sampler = EpochSampler(
        [1] * len(train_ds), cfg.batch_size, cfg.seed, False, train_ex.langs, cfg.language_temperature
    )
    return Inputs(train_ds, HeadOnly(classifier), sampler, None, head_proba, round(time.time() - t0, 2))


def frozen_features(
    cfg: Config, classifier, tokenizer, texts: list[str], encoder_dir: Path, precision: str
) -> torch.Tensor:
    """What the frozen-encoder head reads for `texts`, from one cached pass. When the config stacks and the head
    reads the mean-pooled last layer, that is one block of the stack's multi-layer features, so training and the
    stack share a single encoding pass; otherwise the pooled last layer, cached on its own."""
    if cfg.stack:
        layered = LayerFeatures(encoder_dir, cfg.feature_layers, cfg.max_length, precision=precision)
        block = head_block(cfg, layered.layers, layered.encoder.config.num_hidden_layers)
        if block is not None:
            width = classifier.head.in_features
            x = layered(texts, D.cache_dir() / "features", cfg.eval_batch_size)
            return torch.from_numpy(np.ascontiguousarray(x[:, block * width : (block + 1) * width]))
    cache = D.cache_dir() / "features" / encoder_fingerprint(encoder_dir, cfg.pooling, cfg.max_length, precision)
    return pooled_features(classifier, tokenizer, texts, cfg.max_length, cfg.eval_batch_size, precision, cache)


def record_epoch(progress: Progress, f1: float, epoch: int) -> bool:
    """Update the best score and the stale-epoch count; True when `epoch` is the best so far. Stale epochs count
    only once an epoch has beaten the all-negative predictor (macro-F1 0): an encoder may sit on that plateau for
    an epoch or two before it learns, and patience must not end the run there."""
    if f1 > progress.best_f1:
        progress.best_f1, progress.best_epoch, progress.stale_epochs = f1, epoch, 0
        return True
    if progress.best_f1 > 0:
        progress.stale_epochs += 1
    return False


def initial_label_weights(cfg: Config, train_ex: DS.Examples) -> torch.Tensor | None:
    """The per-label loss weights of the first epoch: None (unweighted), class-balanced, or all 1 (dynamic)."""
    if cfg.loss_weighting == "static":
        return torch.tensor(
            class_balanced_weights(train_ex.y, train_ex.mask, cfg.class_balance_beta), dtype=torch.float32
        )
    if cfg.loss_weighting == "dynamic":
        return torch.ones(train_ex.y.shape[1])
    return None


def _step(cfg: Config, accelerator, model, optimizer, scheduler, loss_fn, batch: dict, ema: Ema | None):
    """One optimiser step on a batch; returns its loss."""
    with record_function("train:forward"), accelerator.autocast():
        logits = model(**{k: v for k, v in batch.items() if k not in ("labels", "label_mask")})
        loss = loss_fn(logits.float(), batch["labels"], batch["label_mask"])
    with record_function("train:backward"):
        accelerator.backward(loss)
    with record_function("train:optimiser"):
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if ema is not None:
            ema.update()
    return loss


def _train_epoch(
    cfg: Config, accelerator, s: Setup, progress: Progress, checkpoint, governor: ThreadGovernor | None = None
) -> int:
    """One pass over the training part (from where an interrupted epoch stopped); returns the examples seen."""
    from tqdm.auto import tqdm

    model, train_dl = s.model, s.train_dl
    if governor is not None:
        governor.begin()
    train_dl.set_epoch(progress.epoch)
    model.train()
    batches = accelerator.skip_first_batches(train_dl, progress.step_in_epoch) if progress.step_in_epoch else train_dl
    bar = tqdm(
        batches,
        total=len(train_dl),
        initial=progress.step_in_epoch,
        desc=f"epoch {progress.epoch + 1}/{cfg.epochs}",
        disable=not accelerator.is_main_process,
        dynamic_ncols=True,
    )
    seen = 0
    for batch in bar:  # the labels name the phases in a profile (benchmarks/profile_phases.py)
        loss = _step(cfg, accelerator, model, s.optimizer, s.scheduler, s.loss_fn, batch, s.ema)
        progress.step_in_epoch += 1
        progress.global_step += 1
        if governor is not None:
            governor.step()
        progress.loss_sum += accelerator.gather(loss.detach()).mean().item()
        seen += len(batch["labels"]) * accelerator.num_processes
        bar.set_postfix(loss=f"{progress.loss_sum / progress.step_in_epoch:.4f}")
        if cfg.checkpoint_every and progress.step_in_epoch % cfg.checkpoint_every == 0:
            checkpoint()
    return seen


def _validate(probs: np.ndarray, val_ex: DS.Examples, loss_fn) -> dict:
    """Validation loss and macro-F1 at 0.5 (the early-stopping criterion), each language over its own labels."""
    val = language_scores(val_ex.y, decide(probs), val_ex.mask, val_ex.langs, val_ex.labels)
    logits = torch.logit(torch.tensor(probs).clamp(1e-7, 1 - 1e-7))
    return {
        "val_loss": float(loss_fn(logits, torch.tensor(val_ex.y), torch.tensor(val_ex.mask))),
        "val_macro_f1": val["mean_macro_f1"],
        "val_label_f1": label_f1(val_ex.y, decide(probs), val_ex.mask),
    }


def _finish(
    layout: RunLayout,
    val_ex: DS.Examples,
    progress: Progress,
    started: float,
    val_proba,
    probs: np.ndarray | None = None,
) -> None:
    """Tune per-label thresholds on the validation part with the best model (its validation probabilities
    `probs`, or computed again when an earlier process validated it), draw the training curves, and write the
    training summary (last: its presence means the training step is complete)."""
    import pandas as pd

    model, _, meta = load_model(layout.model)
    if probs is None:
        probs = val_proba(model)
    thresholds = np.full(len(meta["labels"]), 0.5)
    cols = val_ex.mask.astype(bool).any(axis=0)
    thresholds[cols] = tune_thresholds(val_ex.y[:, cols], probs[:, cols])
    update_metadata(layout.model, thresholds=thresholds.tolist(), thresholds_fitted_on="validation part")
    log = pd.read_json(layout.train_log, lines=True)
    training_curves(log, layout.training_curves)
    write_json(
        layout.train_summary,
        {
            "weights_sha256": sha256_of(
                layout.weights
            ),  # checked on every load: damaged or swapped weights are refused
            "best_epoch": progress.best_epoch,
            "best_val_macro_f1": progress.best_f1,
            "epochs_run": len(log),
            "wall_seconds": round(time.time() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "thresholds": dict(zip(meta["labels"], thresholds.tolist())),
        },
    )
    seal(layout)  # last: every load checks the run's deciding files against it
