"""How results look: the JSON payloads, lines and tables that the CLI prints, built without printing.

Each function turns one library result into a View (or, for the lines a training run streams, a
string with Rich markup), so the CLI is left to parse options, call the library and print.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from .charts import heat_map, line_chart, sparkline
from .counting import CountingDemo
from .diagnostics import TANH_DERIVATIVE_BOUND, Demo, Diagnosis, Flow, Surface
from .errors import fixed, plural
from .evaluation import Evaluation, Score
from .gradcheck import GradientCheck
from .model import Model
from .likeliest import Likely
from .sampling import Drawn, SampleConfig
from .state import EpochRecord, TrainState
from .training import Run, StopReason, TrainResult
from .tune import Setting, Trial, TuneEnd, TuneResult


ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Text from a file (a checkpoint may be hostile), safe to show: control characters and
    bidirectional overrides appear as escapes (\\x1b, \\u202e) instead of acting on the terminal."""
    return ESCAPED.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def shown(text) -> str:
    """Text from a file or a user (a path, a name), safe to show and to print through Rich, whose
    markup it cannot hold."""
    return escape(visible(str(text)))


def shell_word(arg: str) -> str:
    """One argument of a command a user may copy into a shell: quoted as shlex does, or, where it
    holds a control character or a bidirectional override (which would make the command display
    otherwise than it runs), in bash's $'...' with those characters written as escapes."""
    if not ESCAPED.search(arg):
        return shlex.quote(arg)
    body = arg.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + ESCAPED.sub(lambda m: m.group().encode("unicode_escape").decode(), body) + "'"


def shown_command(args: list[str]) -> str:
    """A command to copy, as a line safe to show (see shell_word) and to print through Rich."""
    return escape(" ".join(shell_word(str(arg)) for arg in args))


def finite(payload):
    """The payload with every non-finite number as null: JSON has no NaN or infinity (a diverged
    model's perplexity, a flow too short to fit)."""
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, dict):
        return {key: finite(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(value) for value in payload]
    return payload


def folding_table(*headers: str, title: str | None = None) -> Table:
    """A table whose columns wrap what does not fit, never cutting it with an ellipsis."""
    result = Table(title=title)
    for header in headers:
        result.add_column(header, overflow="fold")
    return result


@dataclass
class View:
    """One result, ready to print: a payload for --json, and lines (text or tables) for people."""

    payload: dict[str, Any]
    lines: list[Any]


# ----------------------------------------------------------------------------------------- train

ENGINE_NAMES = {"numba": "compiled (numba)", "numpy": "numpy"}


def run_header(run: Run, engine: str = "numpy") -> str:
    state, config = run.state, run.state.config
    return (
        f"training on [bold]{shown(state.source)}[/]: {len(state.train_idx)} train / "
        f"{plural(len(state.val_idx), 'validation name')}, {state.model.vocab.size} tokens, hidden {config.hidden_size}, "
        + (f"rprop first step {config.learning_rate}, " if config.optimizer == "rprop" else
           f"{config.optimizer} lr {config.learning_rate} ({config.lr_schedule}"
           f"{f', warm-up {config.warmup:.0%}' if config.warmup else ''}), ")
        + f"{f'batch {config.batch_size}' if config.batch_size else 'full batch'}, clip {config.clip or 'off'}"
        + (f", clip norm {config.clip_norm}" if config.clip_norm else "")
        + (f", embedding {config.embedding_size}" if config.embedding_size else "")
        + (f", dropout {config.dropout}" if config.dropout else "")
        + (f", weight decay {config.weight_decay}" if config.weight_decay else "")
        + (f", patience {config.patience}" if config.patience else "")
        + (f", {config.dtype}" if config.dtype != "float64" else "")
        + f", {ENGINE_NAMES[engine] if config.batch_size == 1 or engine == 'numpy' else 'numpy with compiled steps (numba)'}"
        + (f"; resuming at epoch {state.epoch + 1}, update {state.step}" if run.resumed else "")
        + f"\ncheckpoints: {shown(run.checkpoint)} (latest)"
        + (f", {shown(run.best_checkpoint)} (best)" if len(state.val_idx) else " (no best: no validation names)")
    )


def epoch_line(state: TrainState, record: EpochRecord, preview: list[str]) -> str:
    """train: the mean loss of the epoch's updates; with --eval-train, also that of every training
    name at the epoch's end."""
    val = fixed(record.val_loss, 3) if record.val_loss is not None else "  -  "
    end = f" (at the end {fixed(record.train_loss, 3)})" if record.train_loss is not None else ""
    return (
        f"epoch {record.epoch:>3}/{state.config.epochs}  "
        f"train [bold]{fixed(record.running_loss, 3)}[/]{end}  val [bold]{val}[/] nats/char  "
        f"[dim]|g| {fixed(record.grad_norm_mean, 1)} (max {fixed(record.grad_norm_max, 1)})  "
        f"clipped {100 * record.clip_fraction:.3f}%  "
        + (f"rescaled {100 * record.rescale_fraction:.1f}%  " if state.config.clip_norm else "")
        + f"σmax(Whh) {fixed(record.whh_sigma_max, 2)}  "
        f"{record.seconds:.{2 if record.seconds < 10 else 1}f}s[/]  " + shown(", ".join(preview))
    )


def run_summary(run: Run, result: TrainResult, stopped_by: str | None = None) -> View:
    """How the run ended; a run stopped by a signal (stopped_by: its name) says how to resume it."""
    state = run.state
    last = state.history[-1] if state.history else None
    sampled = run.best_checkpoint if state.best_val_loss is not None else run.checkpoint
    sample_args = ["namegen", "sample", "-c", str(sampled)]
    payload = {
        "reason": result.reason.value, "seconds": result.seconds, "engine": result.engine, "epochs": state.epoch, "updates": state.step,
        "running_loss": last and last.running_loss, "train_loss": last and last.train_loss,
        "val_loss": last and last.val_loss,
        "best_val_loss": state.best_val_loss, "checkpoint": str(run.checkpoint),
        "best_checkpoint": str(run.best_checkpoint) if state.best_val_loss is not None else None,
        "history": [asdict(record) for record in state.history], "stopped_by": stopped_by,
        "sample_command": shlex.join(sample_args),
    }
    if result.reason is StopReason.INTERRUPTED:
        what = "interrupted" if stopped_by in (None, "Ctrl-C") else f"stopped by {stopped_by}"
        return View(payload, [f"{what}: saved {shown(run.checkpoint)} at epoch {state.epoch + 1}, "
                              f"name {state.position}/{len(state.train_idx)}; continue with "
                              f"`{shown_command(['namegen', 'train', '--resume', str(run.checkpoint)])}`"])
    what = {StopReason.MAX_STEPS: "stopped at --max-steps",
            StopReason.EARLY_STOPPED: f"stopped early (validation had not improved for {plural(state.config.patience or 0, 'epoch')})"
            }.get(result.reason, "done")
    val = f", val {fixed(last.val_loss, 3)}" if last and last.val_loss is not None else ""
    best = f" (best {fixed(state.best_val_loss, 3)})" if state.best_val_loss is not None else ""
    losses = f"; train {fixed(last.running_loss, 3)}{val}{best} nats/char" if last else ""
    return View(payload, [f"{what}: {plural(state.epoch, 'epoch')}, {plural(state.step, 'update')} in "
                          f"{result.seconds:.1f}s{losses}; saved {shown(run.checkpoint)}",
                          f"sample from it: {shown_command(sample_args)}"])


# ------------------------------------------------------------------------------------------ tune

def setting_text(setting: Setting) -> str:
    """hidden 128 · embedding 64 · dropout 0.3 · decay 0.01 · adam 0.003 · batch 32"""
    embedding = f" · embedding {setting.embedding_size}" if setting.embedding_size else ""
    decay = f" · decay {setting.weight_decay:g}" if setting.weight_decay else ""
    return (f"hidden {setting.hidden_size}{embedding} · dropout {setting.dropout}{decay} · {setting.optimizer} "
            f"{setting.learning_rate} · batch {setting.batch_size}")


def trial_line(trial: Trial, best: float) -> str:
    """One run, as `tune` streams them: its setting, its rung, how far it got."""
    val = fixed(trial.best_val_loss, 3) if trial.epochs else "  -  "
    end = "  diverged" if trial.diverged else "" if trial.complete else "  cut off"
    start = f" (from {trial.bracket + 1})" if trial.bracket else ""
    return (f"trial {trial.number:>3} rung {trial.rung + 1}{start}  {setting_text(trial.setting)}  epoch {trial.epochs:>2}/"
            f"{trial.planned_epochs}  best val [bold]{val}[/]{end}  "
            f"[dim]{trial.seconds:.1f}s · best so far {fixed(best, 3)}[/]")


TUNE_ROWS = 10  # runs the table shows; --json gives the leaders (tune.LEADERS)


def tune_summary(result: TuneResult, command: list[str], longer: list[str] | None = None,
                 every_name: list[str] | None = None) -> View:
    """The best runs, best first, and the winner: where it is saved, what stayed in place, how to
    train it again, (`longer`) how to train its setting for the next rung, if it has one, and
    (`every_name`) on every name, validation names included."""
    rows = [{"trial": t.number, "rung": t.rung + 1, "first_rung": t.bracket + 1, **t.setting.options(), "epochs": t.epochs,
             "planned_epochs": t.planned_epochs, "complete": t.complete, "best_val_loss": t.best_val_loss,
             "seconds": t.seconds, "diverged": t.diverged} for t in result.leaders]
    best, saved, kept = result.best, result.checkpoint, result.kept
    payload = {"reason": result.reason.value, "seconds": result.seconds, "jobs": result.jobs,
               "rung_epochs": list(result.rungs), "trials_drawn": result.trials, "runs": result.runs, "trials": rows,
               "best": next(row for row in rows if (row["trial"], row["rung"]) == (best.number, best.rung + 1)),
               "checkpoint": str(saved),
               "kept": None if kept is None else {"checkpoint": str(kept.checkpoint), "best_val_loss": kept.best_val_loss,
                                                  "why": kept.why},
               "command": shlex.join(command), "longer_command": shlex.join(longer) if longer else None,
               "all_names_command": shlex.join(every_name) if every_name else None,
               "sample_command": shlex.join(["namegen", "sample", "-c", str(
                   kept.checkpoint if kept and kept.best_val_loss is not None else saved)])}
    shown_rows = rows[:TUNE_ROWS]
    title = (f"tune: {plural(result.trials, 'setting')}, {plural(result.runs, 'run')} in {result.seconds:.0f}s, "
             + ("best first" if len(shown_rows) == result.runs else f"the best {len(shown_rows)} first"))
    table = folding_table("trial", "rung", "hidden", "embedding", "dropout", "decay", "optimizer", "lr", "batch",
                          "epochs", "best val", "seconds", title=title)
    for r in shown_rows:
        epochs = str(r["epochs"]) if r["complete"] or r["diverged"] else f"{r['epochs']}/{r['planned_epochs']}"
        rung = str(r["rung"]) if r["first_rung"] == 1 else f"{r['rung']} (from {r['first_rung']})"
        table.add_row(str(r["trial"]), rung, str(r["hidden_size"]), str(r["embedding_size"] or "-"),
                      str(r["dropout"]), f"{r['weight_decay']:g}", r["optimizer"], str(r["learning_rate"]),
                      str(r["batch_size"]), epochs,
                      fixed(r["best_val_loss"], 4) + (" (diverged)" if r["diverged"] else ""), f"{r['seconds']:.1f}")
    what = {TuneEnd.INTERRUPTED: "interrupted", TuneEnd.WRITE_FAILED: "stopped: a run could not save"
            }.get(result.reason, "budget spent")
    lines = [table, f"{what}: best validation {fixed(best.best_val_loss, 4)} nats/char, trial {best.number} at rung "
                    f"{best.rung + 1} ({setting_text(best.setting)}); saved {shown(saved)}"]
    if kept is not None:
        against = f" ({fixed(kept.best_val_loss, 4)})" if kept.best_val_loss is not None else ""
        lines.append(f"kept {shown(kept.checkpoint)}{against} in place: {escape(kept.why)}")
    lines.append(f"train it again: {shown_command(command)}")
    if longer:
        lines.append(f"or for the next rung's {longer[longer.index('--epochs') + 1]} epochs: {shown_command(longer)}")
    if every_name:
        lines.append(f"or on every name, its validation names too (nothing left to judge it on): "
                     f"{shown_command(every_name)}")
    lines.append(f"sample from it: {shown_command(['namegen', 'sample', '-c', str(saved)])}")
    return View(payload, lines)


# ---------------------------------------------------------------------------------------- sample

def names(path: Path, model: Model, config: SampleConfig, found: list[Drawn], nll: np.ndarray,
          rejected: dict | None = None) -> View:
    """Sampled names, each with its NLL under the model (see evaluation.drawn_nll), the style it was
    drawn in, and the constraints it meets; `rejected` counts the draws not kept, by reason (see
    sampling.draws), and the acceptance is the share of draws kept (found, or a sampling.Tally's
    count where more were kept than shown, as --similar-to ranks)."""
    met = list(config.constraints)

    def row(drawn: Drawn, nats: float) -> dict:
        chars = len(drawn.cleaned) + 1  # its letters and the end of name
        return {"name": drawn.name, "novel": not model.knows(drawn.cleaned), "nats": float(nats),
                "nats_per_char": float(nats) / chars, **({"style": drawn.style} if model.styles else {}),
                **({"distance": drawn.distance} if config.similar_to else {}), "meets": met}

    kept = getattr(rejected, "kept", len(found))
    draws = kept + sum((rejected or {}).values())
    return View({"checkpoint": str(path), "seed": config.seed, "constraints": config.constraints,
                 **({"similar_to": config.similar_to} if config.similar_to else {}),
                 "names": [row(drawn, nats) for drawn, nats in zip(found, nll)],
                 "draws": draws, "acceptance": kept / draws if draws else None,
                 "rejected": dict(sorted((rejected or {}).items()))},  # model.Rejection: JSON writes their values
                [shown(drawn.name) for drawn in found])


def likeliest(path: Path, model: Model, config: SampleConfig, found: list[Likely]) -> View:
    """The names the model finds likeliest (see likeliest.most_likely), with their log-probabilities."""
    rows = [{"name": n.name, "novel": not model.knows(n.cleaned), "log_probability": -n.nats, "nats": n.nats,
             "nats_per_char": n.nats / (len(n.cleaned) + 1), **({"style": config.style} if model.styles else {}),
             "meets": list(config.constraints)} for n in found]
    table = folding_table("name", "log p", "nats/char", "in the data",
                          title=f"the {plural(len(found), 'likeliest name')} ({shown(path)})")
    for r in rows:
        table.add_row(shown(r["name"]), fixed(r["log_probability"], 3), fixed(r["nats_per_char"], 3),
                      "no" if r["novel"] else "yes")
    return View({"checkpoint": str(path), "constraints": config.constraints, "names": rows}, [table] if rows else [])


# ---------------------------------------------------------------------------- evaluate and score

def evaluation(path: Path, results: dict[str, Evaluation]) -> View:
    rows = [{"set": label, "names": e.names, "chars": e.chars, "nats_per_char": e.per_char,
             "nats_per_name": e.per_name, "perplexity": e.perplexity} for label, e in results.items()]
    table = folding_table("set", "names", "chars", "nats/char", "nats/name", "perplexity", title=f"evaluate {shown(path)}")
    for r in rows:
        table.add_row(shown(r["set"]), str(r["names"]), str(r["chars"]), fixed(r["nats_per_char"], 4),
                      fixed(r["nats_per_name"], 3), fixed(r["perplexity"], 3))
    return View({"checkpoint": str(path), "results": rows}, [table])


def scores(path: Path, scored: list[Score]) -> View:
    """Each name's loss; for a model of several lists, in every style, the style it fits best, and
    whether it fits any; for a name with letters the model never saw, which letters."""
    def row(s: Score) -> dict:
        loss = s.loss
        base = {"name": s.name, "nats": loss and loss.nll, "nats_per_char": loss and loss.per_char,
                "perplexity": loss and loss.perplexity, "known": s.known, "unknown_letters": s.unknown}
        if s.by_style:
            base |= {"style": s.style, "fits_a_style": s.fits,
                     "nats_per_char_by_style": {k: e.per_char for k, e in s.by_style.items()}}
        return base

    rows = [row(s) for s in scored]
    styles = next((list(s.by_style) for s in scored if s.by_style), [])
    notes = [score_note(s) for s in scored]
    table = folding_table("name", "nats", "nats/char", "perplexity", "in the data",
                          *(f"nats/char as {shown(style)}" for style in styles), *(["fits best"] if styles else []),
                          *(["note"] if any(notes) else []),
                          title=f"score ({shown(path)})" + (" in the style each name fits best" if styles else ""))
    for r, note in zip(rows, notes):
        figures = ["-"] * 3 if r["nats"] is None else [fixed(r["nats"], 3), fixed(r["nats_per_char"], 3),
                                                       fixed(r["perplexity"], 2)]
        by_style = r.get("nats_per_char_by_style") or {}
        table.add_row(shown(r["name"]), *figures, "yes" if r["known"] else "no",
                      *(fixed(by_style[style], 3) if style in by_style else "-" for style in styles),
                      *([shown(r["style"]) if r.get("fits_a_style") else "-" if r["nats"] is None else "none"]
                        if styles else []),
                      *([shown(note)] if any(notes) else []))
    return View({"checkpoint": str(path), "scores": rows}, [table])


def score_note(s: Score) -> str:
    if s.unknown:
        return f"uses {s.unknown!r}, which the model never saw"
    if not s.fits:
        return f"fits no style: above what held-out names reach in each (closest: {s.style})"
    return ""


# -------------------------------------------------------------------------------------------- info

def capital_places_text(capitals: tuple[str, ...]) -> str:
    """Where names are shown with capitals, in words: "the start, after ' ' and '-'"."""
    marks = [shown(repr(c)) for c in capitals if c != "start"]
    return ", ".join((["the start"] if "start" in capitals else []) + (["after " + " and ".join(marks)] if marks else []))


def info(path: Path, state: TrainState) -> View:
    c, model = state.config, state.model
    payload = {
        "checkpoint": str(path),
        "data": {"source": state.source, "fingerprint": model.fingerprint, "names": len(model.names),
                 "train": len(state.train_idx), "validation": len(state.val_idx)},
        "vocab": "".join(model.vocab.chars), "vocab_size": model.vocab.size,
        "capitalize": model.capitalize, "capitals": list(model.capitals), "config": asdict(c),
        "parameters": int(model.params.size), "epoch": state.epoch, "position": state.position,
        "updates": state.step, "best_val_loss": state.best_val_loss,
        "history": [asdict(record) for record in state.history],
        "styles": [{"name": style, "names": int(np.sum(model.style_of == k))} for k, style in enumerate(model.styles)],
    }
    progress = f"{state.epoch} of {plural(c.epochs, 'epoch')}, {plural(state.step, 'update')}"
    if state.position:
        progress += f", {state.position}/{plural(len(state.train_idx), 'name')} into epoch {state.epoch + 1}"
    lines = [
        f"[bold]{shown(path)}[/]",
        f"data        {shown(state.source)}: {plural(len(model.names), 'name')} "
        f"({len(state.train_idx)} train, {len(state.val_idx)} validation), fingerprint {model.fingerprint}",
        f"vocabulary  {model.vocab.size} tokens: boundary + {shown(repr(''.join(model.vocab.chars)))}"
        + (f"; names shown with capitals at {capital_places_text(model.capitals)}" if model.capitals else ""),
        f"model       hidden {c.hidden_size}, {model.params.size} parameters" + (f" ({c.dtype})" if c.dtype != "float64" else ""),
        *([f"styles      {len(model.styles)} of size {model.style_size}: " + ", ".join(
            f"{shown(style)} ({plural(int(np.sum(model.style_of == k)), 'name')})" for k, style in enumerate(model.styles))]
          if model.styles else []),
        "training    " + ", ".join(f"{f.name}={getattr(c, f.name)}" for f in fields(c)),
        f"progress    {progress}",
    ]
    if state.best_val_loss is not None:
        lines.append(f"best        validation {fixed(state.best_val_loss, 4)} nats/char")
    if state.history:
        lines.append(history_table(state.history))
    return View(payload, lines)


HISTORY_ROWS = 10  # epochs shown at each end of a long history (all of them are in --json)


def history_table(history: list[EpochRecord]) -> Table:
    shown = history if len(history) <= 2 * HISTORY_ROWS else history[:HISTORY_ROWS] + [None] + history[-HISTORY_ROWS:]
    title = "history (nats/char)" if len(shown) == len(history) else \
        f"history (nats/char): the first and last {HISTORY_ROWS} of {len(history)} epochs"
    ended = any(r.train_loss is not None for r in history)  # re-evaluated at epoch ends (--eval-train)
    columns = ["epoch", "train", *(["train at end"] if ended else []), "val", "|g| mean", "|g| max", "clipped %",
               "σmax(Whh)", "seconds"]
    table = folding_table(*columns, title=title)
    for r in shown:
        if r is None:
            table.add_row("…", *[""] * (len(columns) - 1))
            continue
        at_end = ["-" if r.train_loss is None else fixed(r.train_loss, 4)] if ended else []
        table.add_row(str(r.epoch), fixed(r.running_loss, 4), *at_end, "-" if r.val_loss is None else fixed(r.val_loss, 4),
                      fixed(r.grad_norm_mean, 2), fixed(r.grad_norm_max, 2), f"{100 * r.clip_fraction:.4f}",
                      fixed(r.whh_sigma_max, 3), f"{r.seconds:.2f}")
    return table


# ------------------------------------------------------------------------------- looking inside

def gradient_check(label: str, model: Model, checked: GradientCheck) -> View:
    config = checked.config
    payload = {"model": label, "names": checked.names, "truncate": config.truncate, "threshold": config.threshold,
               "max_relative_error": checked.max_error, "passed": checked.passed}
    backward_kind = f"backward truncated every {config.truncate} steps" if config.truncate else "full BPTT"
    table = folding_table("parameter", "shape", "max relative error", "", title=f"gradcheck: {backward_kind} vs finite differences")
    views = model.param_views
    for name in checked.max_error:
        table.add_row(name, str(views[name].shape), f"{checked.max_error[name]:.2e}",
                      "[green]ok[/]" if checked.ok(name) else "[red]FAIL[/]")
    lines = [f"model {shown(label)}; names: {shown(', '.join(checked.names))}", table]
    if config.truncate and not checked.passed:
        lines.append(f"Truncation drops every path through time longer than {config.truncate} steps, so the "
                     "analytic gradient is no longer the derivative of the loss: the recurrent weights "
                     "(Whh, Wxh, bh) disagree with finite differences; the output layer (Why, by) does "
                     "not backpropagate through time and still agrees.")
    return View(payload, lines)


def flow_rows(flow: Flow) -> list[dict]:
    return [{"distance": int(m), "pairs": int(n), "grad_norm": float(g), "relative": float(r), "jacobian_norm": float(j)}
            for m, n, g, r, j in zip(flow.distance, flow.pairs, flow.grad_norm, flow.relative, flow.jacobian_norm)]


def diagnosis(path: Path, d: Diagnosis) -> View:
    flow, sv = d.flow, d.spectrum.singular_values
    rows = flow_rows(flow)
    payload = {"checkpoint": str(path), "names": len(d.names), "singular_values": sv.tolist(),
               "spectral_radius": d.spectrum.spectral_radius, "per_step_factor": flow.per_step_factor,
               "flow": rows, "verdict": d.verdict}
    table = folding_table("distance m", "(name, t) pairs", "mean ‖dL_t/dh_{t-m}‖", "relative to m=0", "mean ‖J_t…J_{t-m+1}‖₂",
                  title="gradient reaching step t - m from the loss at step t")
    for row in rows:
        table.add_row(str(row["distance"]), str(row["pairs"]), f"{row['grad_norm']:.4g}", f"{row['relative']:.3g}",
                      f"{row['jacobian_norm']:.4g}")
    return View(payload, [
        f"[bold]{shown(path)}[/]: gradient flow over {plural(len(d.names), 'name')}",
        f"Whh singular values: max {fixed(sv[0], 3)}, min {fixed(sv[-1], 3)}, {int(np.sum(sv > 1))} of {len(sv)} above 1; "
        f"spectral radius {fixed(d.spectrum.spectral_radius, 3)}; tanh' ≤ {TANH_DERIVATIVE_BOUND:g}",
        f"singular values  {sparkline(sv)}",
        table,
        f"gradient norm    {sparkline(flow.grad_norm, log=True)}  (log scale, m = 0 … {flow.distance[-1]})",
        f"Jacobian product {sparkline(flow.jacobian_norm, log=True)}",
        escape(d.verdict),
    ])


def demo_view(d) -> View:
    """Whichever demo ran: the vanishing and exploding gradients (a Demo) or the counting RNN."""
    return counting(d) if isinstance(d, CountingDemo) else demo(d)


def demo(d: Demo) -> View:
    payload = {"activation": d.activation, "cases": [{"sigma": c.sigma, "grad_norm": c.grad_norm.tolist()} for c in d.cases],
               "clipping": asdict(d.clipping) if d.clipping else None}
    length = len(d.cases[0].grad_norm)
    bound = d.derivative_bound
    factor = "σ" if bound == 1 else f"({bound:g}σ)"
    table = folding_table("σ", "m = 1", "m = 5", "m = 10", f"m = {length - 1}", f"{factor}^{length - 1}",
                          f"‖grad‖, m = 0 … {length - 1} (log)")
    for c in d.cases:
        rel = c.grad_norm / c.grad_norm[0]
        table.add_row(f"{c.sigma:g}", f"{rel[1]:.3g}", f"{rel[5]:.3g}", f"{rel[10]:.3g}", f"{rel[-1]:.3g}",
                      f"{(bound * c.sigma) ** (length - 1):.3g}", sparkline(c.grad_norm, log=True))
    if d.activation == "sigmoid":
        return View(payload, [
            "[bold]The same models with a sigmoid hidden unit.[/] Whh = σ·Q with Q orthogonal; the unit is held at "
            "its steepest point (pre-activation 0, so s = 0.5 and s' = 0.25, its bound), so every step multiplies "
            f"the gradient by exactly 0.25·σ over distance m (a sequence of {length} steps):",
            table,
            f"Even at σ = 1, where tanh keeps the gradient whole, a sigmoid keeps {0.25 ** 10:.2g} of it after 10 steps: "
            "the per-step factor is at most 0.25·σmax(Whh), so the gradient must vanish unless σ > 4, and at "
            "σ = 4 it only holds steady at the unit's steepest point, nowhere else.",
        ])
    c = d.clipping
    return View(payload, [
        "[bold]Vanishing and exploding gradients, by construction.[/] Each model has Whh = σ·Q with Q "
        "orthogonal, so all singular values equal σ; inputs and biases are zero, so h stays at 0 where "
        f"tanh' = 1, its bound. The gradient of the last step's loss then shrinks or grows as σ^m over "
        f"distance m (a sequence of {length} steps):",
        table,
        "With a sigmoid (derivative ≤ 0.25) the per-step factor would be at most 0.25·σ: vanishing unless σ > 4 "
        "(`namegen diagnose --demo --activation sigmoid`).",
        f"\n[bold]Clipping the exploding case[/] (σ = {c.sigma:g}), every entry to ±{c.clip:g}: "
        f"the gradient norm goes from {c.norm_before:.4g} to {c.norm_after:.4g}, its largest entry "
        f"from {c.max_before:.4g} to {c.max_after:.4g}; {100 * c.clipped_fraction:.1f}% of the entries "
        f"were clipped. The update stays bounded, at a cost: element-wise clipping also turns the direction "
        f"(cosine {c.cosine:.3f} with the unclipped gradient).",
        f"Norm clipping (`--clip-norm {c.clip:g}`) scales the whole gradient to norm {c.clip:g} instead: its "
        f"largest entry becomes {c.norm_clipped_max:.4g} and its direction is kept (cosine "
        f"{c.norm_clipped_cosine:.3f}).",
    ])


def surface(path: Path, s: Surface) -> View:
    """The loss over (a, r) as a heat map, the trained point marked, and the gradient norm along r."""
    payload = {"checkpoint": str(path), "names": s.names, "which": s.which, "a": s.a.tolist(), "r": s.r.tolist(),
               "loss": s.loss.tolist(), "grad_norm": s.grad_norm.tolist()}
    rows = s.loss[::-1]  # largest r on top
    labels = [f"r={r:g}" if k % 5 == 0 else "" for k, r in enumerate(s.r[::-1])]
    mark = (len(s.r) - 1 - int(np.argmin(np.abs(s.r - 1))), int(np.argmin(np.abs(s.a - 1))))
    i1, j1 = len(s.r) - 1 - mark[0], mark[1]
    table = folding_table("r (Whh scale)", "loss at a = 1", "‖gradient‖ at a = 1")
    for k in range(0, len(s.r), max(1, len(s.r) // 10)):
        table.add_row(f"{s.r[k]:g}", fixed(s.loss[k, j1], 3), f"{s.grad_norm[k]:.4g}")
    return View(payload, [
        f"{shown(path)}: loss on its {s.names} {s.which} names with Wxh → a·Wxh (columns, a = {s.a[0]:g} … "
        f"{s.a[-1]:g}) and Whh → r·Whh (rows); darker is higher (log scale), X is the trained model "
        f"(a = r = 1, {fixed(s.loss[i1, j1], 3)} nats/char)",
        *heat_map(rows, labels, (f"a={s.a[0]:g}", f"a={s.a[-1]:g}"), mark),
        table,
        f"‖gradient‖ along r  {sparkline(s.grad_norm, log=True)}  (log scale, r = {s.r[0]:g} … {s.r[-1]:g})",
        cliff_sentence(s, i1),
    ])


def cliff_sentence(s: Surface, trained: int) -> str:
    """How much the gradient norm grows from the trained r = 1 to the largest r, in words."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        growth = s.grad_norm[-1] / s.grad_norm[trained]
    if not np.isfinite(growth):
        return ("The gradient norm is not a finite number at every r here (a model that diverged): its growth past "
                "r = 1 cannot be measured.")
    return (f"Past the trained r = 1 the loss climbs and the gradient norm grows {growth:.3g}x by r = {s.r[-1]:g}: the "
            "wall where gradients explode, which clipping keeps a step from jumping off.")


def counting(d: CountingDemo) -> View:
    N, n = d.data.x.shape
    sel = np.arange(0, len(d.w_x), 2)
    w_x, w_rec = d.w_x[sel], d.w_rec[sel][::-1]
    rows = d.surface[sel][:, sel][::-1]
    labels = [f"w_rec={r:+g}" if k % 5 == 0 else "" for k, r in enumerate(w_rec)]
    mark = (int(np.argmin(np.abs(w_rec - 1))), int(np.argmin(np.abs(w_x - 1))))
    over_time = folding_table("(w_x, w_rec)", "|dC/ds_k|, k = 1", f"k = {n // 2}", f"k = {n}", f"k = 1 … {n} (log)")
    for (a, r), g in zip(d.points, d.over_time):
        over_time.add_row(f"({a:g}, {r:g})", f"{g[0]:.3g}", f"{g[n // 2 - 1]:.3g}", f"{g[-1]:.3g}", sparkline(g, log=True))
    steps = folding_table("Rprop iteration", "w_x", "w_rec", "cost")
    for k in (0, 10, 25, 50, 100, 200, len(d.costs) - 1):
        steps.add_row(str(k), f"{d.path[k, 0]:.4f}", f"{d.path[k, 1]:.4f}", f"{d.costs[k]:.3g}")
    example = "".join(str(int(v)) for v in d.data.x[0])
    payload = {"sequences": N, "length": n, "w_x": d.w_x.tolist(), "w_rec": d.w_rec.tolist(), "cost": d.surface.tolist(),
               "points": [list(p) for p in d.points], "over_time": [g.tolist() for g in d.over_time],
               "rprop_path": d.path.tolist(), "rprop_cost": d.costs.tolist()}
    return View(payload, [
        "[bold]The linear counting RNN.[/] s_k = s_(k-1)·w_rec + x_k·w_x from s_0 = 0, one input and one state, "
        f"no nonlinearity; it should output s_{n} = the number of ones. Data: {N} sequences of {n} random bits "
        f"(the first: {example}, count {int(d.data.t[0])}); cost: mean squared error of s_{n}. The answer is "
        "w_x = w_rec = 1.",
        "Cost over (w_x, w_rec) from −3 to 3, darker is higher (log scale), X at (1, 1):",
        *heat_map(rows, labels, ("w_x=-3", "w_x=+3"), mark),
        f"For |w_rec| < 1 the surface is flat; past |w_rec| = 1 the cost grows as w_rec^{2 * n}: a cliff. "
        f"The gradient reaching step k is dC/ds_{n}·w_rec^({n}−k), so it vanishes or explodes back in time:",
        over_time,
        f"Rprop (full batch, every step starting at {d.first_step:g}) from ({d.path[0, 0]:g}, {d.path[0, 1]:g}), up "
        f"the cliff (cost {d.costs[0]:.3g}), moves each weight by its own step and only by the sign of its gradient, "
        "so the cliff cannot throw it:",
        steps,
    ])


CURVE_POINTS = 100  # epochs drawn, at most: a terminal is not wider


def curves(path: Path, history: list[EpochRecord], flow: Flow) -> list[str]:
    """The training curves and the gradient-flow curve, drawn in text (at most CURVE_POINTS
    epochs, evenly spaced, of a longer history)."""
    h = [history[i] for i in np.unique(np.linspace(0, len(history) - 1, CURVE_POINTS).round().astype(int))]
    series = {"train": [r.running_loss for r in h]}
    if any(r.val_loss is not None for r in h):
        series["validation"] = [r.val_loss for r in h]
    sampled = "" if len(h) == len(history) else f" ({len(h)} of them, evenly spaced)"
    return [
        f"[bold]{shown(path)}[/]: loss (nats/char) by epoch 1 … {len(history)}{sampled}",
        *line_chart(series),
        f"clipped entries  {sparkline([r.clip_fraction for r in h])}  max {100 * max(r.clip_fraction for r in h):.4f}%",
        f"gradient norm    {sparkline([r.grad_norm_mean for r in h])}  "
        f"mean {fixed(h[0].grad_norm_mean, 1)} → {fixed(h[-1].grad_norm_mean, 1)}",
        f"σmax(Whh)        {sparkline([r.whh_sigma_max for r in h])}  "
        f"{fixed(h[0].whh_sigma_max, 2)} → {fixed(h[-1].whh_sigma_max, 2)}",
        f"gradient flow    {sparkline(flow.grad_norm, log=True)}  ‖dL_t/dh_(t-m)‖ for m = 0 … {flow.distance[-1]}, "
        f"{flow.grad_norm[0]:.3g} → {flow.grad_norm[-1]:.3g} (log scale)",
    ]
