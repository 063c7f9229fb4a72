"""The `namegen` command line: parse options, call the library, render the results.

This is the only module that prints. Library errors (NamegenError) become one red line on stderr
and exit code 1; impossible option values exit with code 2, as typer does for its own checks.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
from dataclasses import asdict, fields, replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from tqdm import tqdm

from . import __version__
from .checkpoint import check_writable, load_checkpoint
from .charts import line_chart, sparkline
from .data import bundled_path, default_data_path, encode_names, parse_names, read_names
from .diagnostics import TANH_DERIVATIVE_BOUND, demo, gradient_flow, verdict, whh_spectrum
from .errors import NamegenError, OptionError, SamplingError
from .gradcheck import check_gradients
from .model import PARAM_NAMES
from .optim import OPTIMIZERS
from .plot import write_png
from .sample import SampleConfig, sample
from .state import MAX_HIDDEN
from .train import (LR_SCHEDULES, Callbacks, TrainConfig, TrainState, best_path, evaluate, name_nll,
                    new_state, resume_state, train as run_training)

app = typer.Typer(
    help="Learn a list of names with a character-level RNN, then invent new ones in the same style.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

TRAIN, SAMPLE = TrainConfig(), SampleConfig()
OptimizerChoice = Enum("OptimizerChoice", {name: name for name in OPTIMIZERS}, type=str)
ScheduleChoice = Enum("ScheduleChoice", {name: name for name in LR_SCHEDULES}, type=str)
EXIT_INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors():
    """Turn library errors into one line on stderr; a bad option combination exits with 2."""
    try:
        yield
    except SamplingError as e:
        for name in e.found:  # what was found is still useful: print it before failing
            out.print(escape(name))
        raise fail(str(e)) from None
    except OptionError as e:
        raise fail(str(e), code=2) from None
    except NamegenError as e:
        raise fail(str(e)) from None
    except ValueError as e:  # raised by the config dataclasses' validate()
        raise fail(f"invalid option: {e}", code=2) from None
    except MemoryError:
        raise fail("not enough memory for this request; try a smaller --hidden-size, --batch-size or --count") from None


def positive(value: Optional[float]) -> Optional[float]:
    """Option check: a finite number above zero."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a positive finite number")
    return value


def non_negative(value: Optional[float]) -> Optional[float]:
    """Option check: a finite number, zero or above."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a finite number >= 0")
    return value


def fraction(value: Optional[float]) -> Optional[float]:
    """Option check: a share in [0, 1)."""
    if value is not None and not (0 <= value < 1):
        raise typer.BadParameter(f"{value} is not in [0, 1)")
    return value


def default_checkpoint() -> Path:
    """checkpoints/dinos.npz under the current directory if it is there, else the bundled one."""
    local = Path("checkpoints") / "dinos.npz"
    return local if local.exists() else bundled_path("checkpoints", "dinos.npz")


def load(path: Optional[Path]) -> tuple[Path, TrainState]:
    path = path or default_checkpoint()
    return path, load_checkpoint(path)


def emit_json(payload) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


CheckpointOption = Annotated[Optional[Path], typer.Option(
    "--checkpoint", "-c", help="Checkpoint to use. \\[default: checkpoints/dinos.npz if present, else the bundled one]",
    dir_okay=True, show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]


def version_callback(value: bool):
    if value:
        typer.echo(f"namegen {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
):
    """namegen: a character-level RNN name generator."""


# ----------------------------------------------------------------------------------------- train

def epoch_line(state: TrainState, record: dict, preview: list[str]) -> str:
    val = f"{record['val_loss']:.3f}" if record["val_loss"] is not None else "  -  "
    return (
        f"epoch {record['epoch']:>3}/{state.config.epochs}  "
        f"train [bold]{record['train_loss']:.3f}[/]  val [bold]{val}[/] nats/char  "
        f"[dim]|g| {record['grad_norm_mean']:.1f} (max {record['grad_norm_max']:.1f})  "
        f"clipped {100 * record['clip_fraction']:.3f}%  σmax(Whh) {record['whh_sigma_max']:.2f}  "
        f"{record['seconds']:.1f}s[/]  " + escape(", ".join(preview))
    )


def preview_names(state: TrainState, count: int) -> list[str]:
    """A few names from the model as it stands; decoration, so it never stops training."""
    if not count:
        return []
    rng = np.random.default_rng([state.config.seed, state.epoch])  # never the training generator
    try:
        return sample(state, SampleConfig(count=count, max_tries=100 * count), rng)
    except SamplingError as e:  # a model this early (or this broken) may not end its names
        return e.found + ["(no other name ended)"]


class Progress:
    """A tqdm bar per epoch (hidden when stderr is not a terminal) and a Ctrl-C flag."""

    def __init__(self, show_bar: bool):
        self.show_bar = show_bar
        self.bar = None
        self.stop_requested = False

    def request_stop(self, signum, frame):
        self.stop_requested = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends at once

    def epoch_start(self, state: TrainState, names: int):
        self.close()
        self.bar = tqdm(total=names, initial=state.position, unit="name", leave=False, dynamic_ncols=True,
                        desc=f"epoch {state.epoch + 1}/{state.config.epochs}",
                        disable=None if self.show_bar else True)

    def step(self, done: int, running_loss: float):
        self.bar.update(done - self.bar.n)
        if done % 64 == 0:
            self.bar.set_postfix_str(f"loss {running_loss:.3f}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@app.command()
def train(
    data: Annotated[Optional[Path], typer.Option(help="Names file, one name per line (UTF-8). \\[default: the bundled dinos.txt]", show_default=False)] = None,
    hidden_size: Annotated[Optional[int], typer.Option(min=1, max=MAX_HIDDEN, help=f"Units in the hidden state. \\[default: {TRAIN.hidden_size}]", show_default=False)] = None,
    learning_rate: Annotated[Optional[float], typer.Option(callback=positive, help=f"Step size at the first update. \\[default: {TRAIN.learning_rate}]", show_default=False)] = None,
    lr_schedule: Annotated[Optional[ScheduleChoice], typer.Option(help=f"'linear' decays the step to 0 by the end; 'constant' keeps it. \\[default: {TRAIN.lr_schedule}]", show_default=False)] = None,
    optimizer: Annotated[Optional[OptimizerChoice], typer.Option(help=f"The update rule. \\[default: {TRAIN.optimizer}]", show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help=f"Total passes over the training names (with --resume: the new total). \\[default: {TRAIN.epochs}]", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help=f"Names per update (padded and masked). \\[default: {TRAIN.batch_size}]", show_default=False)] = None,
    clip: Annotated[Optional[float], typer.Option(callback=non_negative, help=f"Clip each gradient entry to [-clip, clip]; 0 turns it off. \\[default: {TRAIN.clip}]", show_default=False)] = None,
    val_fraction: Annotated[Optional[float], typer.Option(callback=fraction, help=f"Share of names held out for validation; 0 turns it off. \\[default: {TRAIN.val_fraction}]", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(min=0, help=f"Seed for the split, initialisation and shuffling. \\[default: {TRAIN.seed}]", show_default=False)] = None,
    keep_case: Annotated[bool, typer.Option("--keep-case", help="Keep letter case instead of lower-casing names.")] = False,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many updates in total (saves a resumable checkpoint).", show_default=False)] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Where checkpoints go: <data name>.npz after every epoch, <data name>.best.npz for the best validation loss. \\[default: checkpoints]", file_okay=False, show_default=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run saved in this checkpoint, writing back to it.", show_default=False)] = None,
    preview: Annotated[int, typer.Option(min=0, help="Names sampled for each epoch's line.")] = 3,
    as_json: JsonOption = False,
):
    """Train a model on a names file, saving checkpoints after every epoch.

    Example: namegen train --data data/dinos.txt --epochs 25
    """
    options = dict(  # None: not given, so a resumed run keeps the checkpoint's value
        hidden_size=hidden_size, learning_rate=learning_rate, lr_schedule=lr_schedule and lr_schedule.value,
        optimizer=optimizer and optimizer.value, epochs=epochs, batch_size=batch_size, clip=clip,
        val_fraction=val_fraction, seed=seed, keep_case=keep_case or None, max_steps=max_steps,
    )
    if resume is not None and out_dir is not None:
        raise typer.BadParameter("a resumed run writes back to its checkpoint; drop --out-dir or --resume",
                                 param_hint="'--out-dir'")
    with user_errors():
        if resume is not None:
            saved = load_checkpoint(resume)
            state = resume_state(saved, options, read_names(data, saved.config.keep_case) if data else None)
            checkpoint = resume
        else:
            config = TrainConfig(**{k: v for k, v in options.items() if v is not None})
            names = read_names(data or default_data_path(), config.keep_case)
            if data is None:  # not the install's absolute path: it means nothing on another machine
                names = replace(names, source="dinos.txt (bundled with namegen)")
            state = new_state(config, names)
            checkpoint = (out_dir or Path("checkpoints")) / f"{(data or default_data_path()).stem}.npz"
        check_writable(checkpoint.parent)
    config = state.config
    if not as_json:
        out.print(
            f"training on [bold]{escape(state.source)}[/]: {len(state.train_idx)} train / "
            f"{len(state.val_idx)} validation names, {state.vocab.size} tokens, hidden {config.hidden_size}, "
            f"{config.optimizer} lr {config.learning_rate} ({config.lr_schedule}), batch {config.batch_size}, "
            f"clip {config.clip or 'off'}"
            + (f"; resuming at epoch {state.epoch + 1}, update {state.step}" if resume else "")
            + f"\ncheckpoints: {escape(str(checkpoint))} (latest), {escape(str(best_path(checkpoint)))} (best)"
        )
    progress = Progress(show_bar=not as_json)

    def on_epoch_end(state: TrainState, record: dict):
        progress.close()
        if not as_json:
            out.print(epoch_line(state, record, preview_names(state, preview)))

    previous_handler = signal.signal(signal.SIGINT, progress.request_stop)
    started = time.perf_counter()
    try:
        with user_errors():
            result = run_training(state, checkpoint, Callbacks(
                on_epoch_start=progress.epoch_start, on_step=progress.step, on_epoch_end=on_epoch_end,
                should_stop=lambda: progress.stop_requested))
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous_handler)
    seconds = time.perf_counter() - started
    last = state.history[-1] if state.history else None
    summary = {
        "reason": result.reason, "seconds": seconds, "epochs": state.epoch, "updates": state.step,
        "train_loss": last and last["train_loss"], "val_loss": last and last["val_loss"],
        "best_val_loss": state.best_val_loss, "checkpoint": str(checkpoint),
        "best_checkpoint": str(best_path(checkpoint)) if state.best_val_loss is not None else None,
    }
    if as_json:
        emit_json(summary | {"history": state.history})
    elif result.reason == "interrupted":
        err.print(f"interrupted: saved {escape(str(checkpoint))} at epoch {state.epoch + 1}, "
                  f"name {state.position}/{len(state.train_idx)}; continue with "
                  f"`namegen train --resume {escape(str(checkpoint))}`")
    else:
        what = "stopped at --max-steps" if result.reason == "max-steps" else "done"
        val = f", val {last['val_loss']:.3f}" if last and last["val_loss"] is not None else ""
        best = f" (best {state.best_val_loss:.3f})" if state.best_val_loss is not None else ""
        losses = f"; train {last['train_loss']:.3f}{val}{best} nats/char" if last else ""
        out.print(f"{what}: {state.epoch} epochs, {state.step} updates in {seconds:.1f}s{losses}; "
                  f"saved {escape(str(checkpoint))}")
    if result.reason == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


# ---------------------------------------------------------------------------------------- sample

@app.command("sample")
def sample_command(
    checkpoint: CheckpointOption = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many names.")] = SAMPLE.count,
    temperature: Annotated[float, typer.Option(callback=positive, help="Below 1: safer names; above 1: wilder.")] = SAMPLE.temperature,
    top_k: Annotated[int, typer.Option(min=0, help="Draw each letter from the k likeliest only; 0: all.")] = SAMPLE.top_k,
    prefix: Annotated[str, typer.Option(help="Every name starts with these letters.")] = SAMPLE.prefix,
    min_length: Annotated[int, typer.Option(min=1, help="Shortest name, in letters.")] = SAMPLE.min_length,
    max_length: Annotated[Optional[int], typer.Option(min=1, help="Longest name, in letters. \\[default: twice the longest training name, at least 20]", show_default=False)] = None,
    novel: Annotated[bool, typer.Option("--novel", help="Only names that are not in the training list.")] = False,
    unique: Annotated[bool, typer.Option("--unique", help="Never print the same name twice.")] = False,
    seed: Annotated[Optional[int], typer.Option(min=0, help="Seed for repeatable names. \\[default: fresh each run]", show_default=False)] = None,
    as_json: JsonOption = False,
):
    """Invent names from a checkpoint.

    Example: namegen sample -n 5 --prefix ste --novel --seed 1
    """
    if max_length is not None and min_length > max_length:
        raise typer.BadParameter(f"--min-length {min_length} is greater than --max-length {max_length}",
                                 param_hint="'--min-length'")
    config = SampleConfig(count=count, temperature=temperature, top_k=top_k, prefix=prefix,
                          min_length=min_length, max_length=max_length or 0, novel=novel, unique=unique)
    with user_errors():
        path, state = load(checkpoint)
        names = sample(state, config, np.random.default_rng(seed))
    if as_json:
        emit_json({"checkpoint": str(path), "seed": seed,
                   "names": [{"name": name, "novel": not state.knows(name)} for name in names]})
    else:
        for name in names:
            out.print(escape(name))


# ---------------------------------------------------------------------------- evaluate and score

def evaluation_row(label: str, e) -> dict:
    return {"set": label, "names": e.names, "chars": e.chars, "nats_per_char": e.per_char,
            "nats_per_name": e.per_name, "perplexity": e.perplexity}


@app.command("evaluate")
def evaluate_command(
    checkpoint: CheckpointOption = None,
    data: Annotated[Optional[Path], typer.Option(help="Names file to evaluate on. \\[default: the checkpoint's own train and validation names]", show_default=False)] = None,
    as_json: JsonOption = False,
):
    """Mean negative log-likelihood per character and per name, and perplexity.

    Example: namegen evaluate --checkpoint checkpoints/dinos.npz --data data/dinos.txt
    """
    with user_errors():
        path, state = load(checkpoint)
        params = state.param_views
        if data is not None:
            names = read_names(data, state.config.keep_case).names
            sets = [(str(data), encode_names(state.vocab, names, str(data)), None)]
        else:
            encoded = encode_names(state.vocab, state.names)
            sets = [("train", encoded, state.train_idx), ("validation", encoded, state.val_idx)]
        rows = [evaluation_row(label, evaluate(params, enc, idx)) for label, enc, idx in sets
                if idx is None or len(idx)]
    if as_json:
        emit_json({"checkpoint": str(path), "results": rows})
        return
    table = Table("set", "names", "chars", "nats/char", "nats/name", "perplexity", title=f"evaluate {path}")
    for r in rows:
        table.add_row(escape(r["set"]), str(r["names"]), str(r["chars"]), f"{r['nats_per_char']:.4f}",
                      f"{r['nats_per_name']:.3f}", f"{r['perplexity']:.3f}")
    out.print(table)


@app.command()
def score(
    names: Annotated[list[str], typer.Argument(help="Names to score.", show_default=False)],
    checkpoint: CheckpointOption = None,
    as_json: JsonOption = False,
):
    """How plausible each name is to the model: its negative log-likelihood (lower is likelier).

    Example: namegen score Tyrannosaurus Xyzzy
    """
    with user_errors():
        path, state = load(checkpoint)
        cleaned = parse_names("\n".join(names), "the names given", state.config.keep_case).names
        if len(cleaned) != len(names):
            raise NamegenError("every name must have at least one non-space character")
        nll = name_nll(state.param_views, encode_names(state.vocab, cleaned, "score"))
    rows = [{"name": shown, "nats": float(total), "nats_per_char": float(total) / (len(name) + 1),
             "perplexity": float(np.exp(total / (len(name) + 1))), "known": state.knows(name)}
            for shown, name, total in zip(names, cleaned, nll)]
    if as_json:
        emit_json({"checkpoint": str(path), "scores": rows})
        return
    table = Table("name", "nats", "nats/char", "perplexity", "in the data", title=f"score ({path})")
    for r in rows:
        table.add_row(escape(r["name"]), f"{r['nats']:.3f}", f"{r['nats_per_char']:.3f}",
                      f"{r['perplexity']:.2f}", "yes" if r["known"] else "no")
    out.print(table)


# -------------------------------------------------------------------------------------------- info

def info_payload(path: Path, state: TrainState) -> dict:
    return {
        "checkpoint": str(path),
        "data": {"source": state.source, "fingerprint": state.data_fingerprint, "names": len(state.names),
                 "train": len(state.train_idx), "validation": len(state.val_idx)},
        "vocab": "".join(state.vocab.chars), "vocab_size": state.vocab.size,
        "capitalize": state.capitalize, "config": asdict(state.config),
        "parameters": int(state.params.size), "epoch": state.epoch, "position": state.position,
        "updates": state.step, "best_val_loss": state.best_val_loss, "history": state.history,
    }


@app.command()
def info(
    path: Annotated[Optional[Path], typer.Argument(help="Checkpoint to describe. \\[default: as for --checkpoint]", show_default=False)] = None,
    as_json: JsonOption = False,
):
    """Configuration, data, progress, losses and vocabulary of a checkpoint.

    Example: namegen info checkpoints/dinos.npz
    """
    with user_errors():
        path, state = load(path)
    payload = info_payload(path, state)
    if as_json:
        emit_json(payload)
        return
    c = state.config
    out.print(f"[bold]{escape(str(path))}[/]")
    out.print(f"data        {escape(state.source)}: {len(state.names)} names "
              f"({len(state.train_idx)} train, {len(state.val_idx)} validation), fingerprint {state.data_fingerprint}")
    out.print(f"vocabulary  {state.vocab.size} tokens: boundary + {escape(repr(''.join(state.vocab.chars)))}"
              + ("; names shown capitalised" if state.capitalize else ""))
    out.print(f"model       hidden {c.hidden_size}, {state.params.size} parameters")
    out.print("training    " + ", ".join(f"{f.name}={getattr(c, f.name)}" for f in fields(c)))
    progress = f"{state.epoch} of {c.epochs} epochs, {state.step} updates"
    if state.position:
        progress += f", {state.position}/{len(state.train_idx)} names into epoch {state.epoch + 1}"
    out.print(f"progress    {progress}")
    if state.best_val_loss is not None:
        out.print(f"best        validation {state.best_val_loss:.4f} nats/char")
    if state.history:
        table = Table("epoch", "train", "val", "|g| mean", "|g| max", "clipped %", "σmax(Whh)", "seconds",
                      title="history (nats/char)")
        for r in state.history:
            table.add_row(str(r["epoch"]), f"{r['train_loss']:.4f}",
                          "-" if r["val_loss"] is None else f"{r['val_loss']:.4f}",
                          f"{r['grad_norm_mean']:.2f}", f"{r['grad_norm_max']:.2f}",
                          f"{100 * r['clip_fraction']:.4f}", f"{r['whh_sigma_max']:.3f}", f"{r['seconds']:.2f}")
        out.print(table)


# ------------------------------------------------------------------------------- looking inside

def chosen_names(state: TrainState, given: Optional[list[str]], count: int, seed: int) -> tuple[list[str], list]:
    """The given names, cleaned like the data, or `count` distinct names drawn from the data,
    with their (inputs, targets) pairs; a letter the model never saw is a DataError."""
    if given:
        names = parse_names("\n".join(given), "the names given", state.config.keep_case).names
    else:
        known = sorted(set(state.names))
        picks = np.random.default_rng(seed).choice(len(known), size=min(count, len(known)), replace=False)
        names = [known[i] for i in sorted(picks)]
    encoded = encode_names(state.vocab, names, "the names given")
    return names, [encoded.pair(i) for i in range(len(encoded))]


def random_state(seed: int) -> TrainState:
    """A small untrained model over the bundled names, weights large enough to exercise every path."""
    names = replace(read_names(default_data_path()), source="dinos.txt (bundled with namegen)")
    state = new_state(TrainConfig(hidden_size=8, seed=seed), names)
    state.params += np.random.default_rng(seed).standard_normal(state.params.size) * 0.5
    return state


@app.command()
def gradcheck(
    names: Annotated[Optional[list[str]], typer.Argument(help="Names to check on. [default: --count names from the data]", show_default=False)] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="Model to check. [default: a small random model]", show_default=False)] = None,
    count: Annotated[int, typer.Option(min=1, help="Names drawn from the data when none are given.")] = 3,
    truncate: Annotated[Optional[int], typer.Option(min=1, help="Check a backward pass truncated every K steps, to see why truncation is wrong.", show_default=False)] = None,
    threshold: Annotated[float, typer.Option(callback=positive, help="Largest relative error that passes.")] = 1e-6,
    seed: Annotated[int, typer.Option(min=0, help="Seed for the random model and the names drawn.")] = 0,
    as_json: JsonOption = False,
):
    """Compare backpropagation with central finite differences in float64, clipping off.

    Exits with 1 if any parameter's max relative error is above --threshold.
    Example: namegen gradcheck --checkpoint checkpoints/dinos.npz --truncate 3
    """
    with user_errors():
        path, state = load(checkpoint) if checkpoint else ("a random model (hidden 8)", random_state(seed))
        picked, pairs = chosen_names(state, names, count, seed)
    params = state.param_views
    worst = {name: 0.0 for name in PARAM_NAMES}
    for pair in pairs:
        for name, error in check_gradients(params, *pair, truncate=truncate).items():
            worst[name] = max(worst[name], error)
    passed = max(worst.values()) <= threshold
    if as_json:
        emit_json({"model": str(path), "names": picked, "truncate": truncate, "threshold": threshold,
                   "max_relative_error": worst, "passed": passed})
    else:
        backward_kind = f"backward truncated every {truncate} steps" if truncate else "full BPTT"
        table = Table("parameter", "shape", "max relative error", "", title=f"gradcheck: {backward_kind} vs finite differences")
        for name in PARAM_NAMES:
            ok = worst[name] <= threshold
            table.add_row(name, str(params[name].shape), f"{worst[name]:.2e}", "[green]ok[/]" if ok else "[red]FAIL[/]")
        out.print(f"model {escape(str(path))}; names: {escape(', '.join(picked))}")
        out.print(table)
        if truncate and not passed:
            out.print(f"Truncation drops every path through time longer than {truncate} steps, so the "
                      "analytic gradient is no longer the derivative of the loss: the recurrent weights "
                      "(Whh, Wxh, bh) disagree with finite differences; the output layer (Why, by) does "
                      "not backpropagate through time and still agrees.")
    if not passed:
        if not as_json:
            err.print(f"[bold red]error:[/] max relative error {max(worst.values()):.2e} is above {threshold:.0e}")
        raise typer.Exit(1)


def flow_rows(flow) -> list[dict]:
    base = flow.grad_norm[0]
    return [{"distance": int(m), "pairs": int(n), "grad_norm": float(g), "relative": float(g / base),
             "jacobian_norm": float(j)} for m, n, g, j in zip(flow.distance, flow.pairs, flow.grad_norm, flow.jacobian_norm)]


@app.command()
def diagnose(
    names: Annotated[Optional[list[str]], typer.Argument(help="Names to trace. [default: --count names from the data]", show_default=False)] = None,
    checkpoint: CheckpointOption = None,
    count: Annotated[int, typer.Option(min=1, help="Names drawn from the data when none are given.")] = 64,
    max_distance: Annotated[int, typer.Option(min=1, help="Longest distance t - k to report.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="Seed for the names drawn.")] = 0,
    demo_mode: Annotated[bool, typer.Option("--demo", help="Instead: models with chosen singular values of Whh, showing vanishing and exploding gradients.")] = False,
    as_json: JsonOption = False,
):
    """How the gradient flows back through time, and whether it vanishes or explodes.

    Example: namegen diagnose --checkpoint checkpoints/dinos.npz
    """
    if demo_mode:
        return show_demo(as_json)
    with user_errors():
        path, state = load(checkpoint)
        picked, pairs = chosen_names(state, names, count, seed)
    flow = gradient_flow(state.param_views, pairs, max_distance)
    spectrum = whh_spectrum(state.param_views["Whh"])
    reading = verdict(flow, spectrum)
    if as_json:
        emit_json({"checkpoint": str(path), "names": len(picked), "singular_values": spectrum.singular_values.tolist(),
                   "spectral_radius": spectrum.spectral_radius, "per_step_factor": flow.per_step_factor,
                   "flow": flow_rows(flow), "verdict": reading})
        return
    sv = spectrum.singular_values
    out.print(f"[bold]{escape(str(path))}[/]: gradient flow over {len(picked)} names")
    out.print(f"Whh singular values: max {sv[0]:.3f}, min {sv[-1]:.3f}, {int(np.sum(sv > 1))} of {len(sv)} above 1; "
              f"spectral radius {spectrum.spectral_radius:.3f}; tanh' ≤ {TANH_DERIVATIVE_BOUND:g}")
    out.print(f"singular values  {sparkline(sv)}")
    table = Table("distance m", "(name, t) pairs", "mean ‖dL_t/dh_{t-m}‖", "relative to m=0", "mean ‖J_t…J_{t-m+1}‖₂",
                  title="gradient reaching step t - m from the loss at step t")
    for row in flow_rows(flow):
        table.add_row(str(row["distance"]), str(row["pairs"]), f"{row['grad_norm']:.4g}", f"{row['relative']:.3g}",
                      f"{row['jacobian_norm']:.4g}")
    out.print(table)
    out.print(f"gradient norm    {sparkline(flow.grad_norm, log=True)}  (log scale, m = 0 … {flow.distance[-1]})")
    out.print(f"Jacobian product {sparkline(flow.jacobian_norm, log=True)}")
    out.print(escape(reading))


def show_demo(as_json: bool) -> None:
    cases, clipping = demo()
    if as_json:
        emit_json({"cases": [{"sigma": c.sigma, "grad_norm": c.grad_norm.tolist()} for c in cases], "clipping": clipping})
        return
    length = len(cases[0].grad_norm)
    out.print("[bold]Vanishing and exploding gradients, by construction.[/] Each model has Whh = σ·Q with Q "
              "orthogonal, so all singular values equal σ; inputs and biases are zero, so h stays at 0 where "
              f"tanh' = 1, its bound. The gradient of the last step's loss then shrinks or grows as σ^m over "
              f"distance m (a sequence of {length} steps):")
    table = Table("σ", "m = 1", "m = 5", "m = 10", f"m = {length - 1}", "σ^" + str(length - 1), f"‖grad‖, m = 0 … {length - 1} (log)")
    for c in cases:
        rel = c.grad_norm / c.grad_norm[0]
        table.add_row(f"{c.sigma:g}", f"{rel[1]:.3g}", f"{rel[5]:.3g}", f"{rel[10]:.3g}", f"{rel[-1]:.3g}",
                      f"{c.sigma ** (length - 1):.3g}", sparkline(c.grad_norm, log=True))
    out.print(table)
    out.print("With a sigmoid (derivative ≤ 0.25) the per-step factor would be at most 0.25·σ: vanishing unless σ > 4.")
    c = clipping
    out.print(f"\n[bold]Clipping the exploding case[/] (σ = {c['sigma']:g}), every entry to ±{c['clip']:g}: "
              f"the gradient norm goes from {c['norm_before']:.4g} to {c['norm_after']:.4g}, its largest entry "
              f"from {c['max_before']:.4g} to {c['max_after']:.4g}; {100 * c['clipped_fraction']:.1f}% of the entries "
              f"were clipped. The update stays bounded, at a cost: element-wise clipping also turns the direction "
              f"(cosine {c['cosine']:.3f} with the unclipped gradient).")


@app.command()
def plot(
    checkpoint: CheckpointOption = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write a PNG here (needs namegen[plot]). [default: draw in the terminal]", show_default=False, dir_okay=False)] = None,
    count: Annotated[int, typer.Option(min=1, help="Names traced for the gradient-flow curve.")] = 64,
    max_distance: Annotated[int, typer.Option(min=1, help="Longest distance in the gradient-flow curve.")] = 20,
):
    """Loss curves, clipping and gradient norms per epoch, and the gradient-flow curve.

    Example: namegen plot --out training.png
    """
    with user_errors():
        path, state = load(checkpoint)
        if not state.history:
            raise NamegenError(f"{path} has no completed epoch to plot yet")
        _, pairs = chosen_names(state, None, count, 0)
        flow = gradient_flow(state.param_views, pairs, max_distance)
        if out_file is not None:
            write_png(out_file, state.history, flow, f"namegen: {state.source}")
            out.print(f"wrote {escape(str(out_file))}")
            return
    h = state.history
    series = {"train": [r["train_loss"] for r in h]}
    if any(r["val_loss"] is not None for r in h):
        series["validation"] = [r["val_loss"] for r in h]
    out.print(f"[bold]{escape(str(path))}[/]: loss (nats/char) by epoch 1 … {len(h)}")
    for line in line_chart(series):
        out.print(line)
    out.print(f"clipped entries  {sparkline([r['clip_fraction'] for r in h])}  max {100 * max(r['clip_fraction'] for r in h):.4f}%")
    out.print(f"gradient norm    {sparkline([r['grad_norm_mean'] for r in h])}  mean {h[0]['grad_norm_mean']:.1f} → {h[-1]['grad_norm_mean']:.1f}")
    out.print(f"σmax(Whh)        {sparkline([r['whh_sigma_max'] for r in h])}  {h[0]['whh_sigma_max']:.2f} → {h[-1]['whh_sigma_max']:.2f}")
    out.print(f"gradient flow    {sparkline(flow.grad_norm, log=True)}  ‖dL_t/dh_(t-m)‖ for m = 0 … {flow.distance[-1]}, "
              f"{flow.grad_norm[0]:.3g} → {flow.grad_norm[-1]:.3g} (log scale)")


def main():
    try:
        app(prog_name="namegen")
    except KeyboardInterrupt:  # Ctrl-C outside training (which saves and exits 130 itself)
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
