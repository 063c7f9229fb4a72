"""The `namegen` command line: parse the options, call one library function, render the result.

This is the only module that prints. Every error a user can fix ends in `Commands.invoke` as one
line on stderr: exit code 2 for an impossible option value or bad usage, 1 for a problem with a
file or a request. A bug is not caught there: it shows its traceback and exits with 1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.console import Console
from tqdm import tqdm
from typer.core import TyperCommand, TyperGroup

from . import __version__, views
from .checkpoint import check_checkpoint_dir, load_checkpoint, load_model
from .counting import counting_demo
from .diagnostics import ACTIVATIONS, FlowConfig, demo, diagnose, loss_surface, sigmoid_demo
from .errors import NamegenError, OptionError, OptionName, TrainingError, shortened
from .evaluation import evaluate_sets, score
from .gradcheck import GradcheckConfig, gradient_check, random_model
from .data import read_names
from .model import Model
from .options import check, option, spec_of
from .plot import write_png, write_surface_png
from .recent import default_checkpoint, record_run
from .runs import RunFiles, exclusive_run
from .sampling import SampleConfig, sample, stream
from .state import EpochRecord, TrainConfig, TrainState
from .threads import blas_threads
from .training import Callbacks, Speed, choose_engine, preview_names, start_run, train
from .tune import ROUND_SIZE, RUNG_EPOCHS, TuneCallbacks, duration_text, parse_duration, reproduce_command, tune

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130  # 130 = 128 + SIGINT: the shell's code for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `yes | head -1` reports for yes

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def flag(name: str) -> str:
    """The command-line spelling of an option: learning_rate -> --learning-rate."""
    return "--" + name.replace("_", "-")


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {views.shown(message)}")
    return typer.Exit(code)


MEMORY_ADVICE = {"train": "a smaller --hidden-size or --batch-size", "sample": "a smaller --count or --max-length",
                 "gradcheck": "fewer or shorter names", "diagnose": "fewer names (--count) or a smaller --max-distance",
                 "plot": "fewer names (--count) or a smaller --max-distance"}


class Commands(TyperGroup):
    """namegen's command group: runs one command, and turns every error a user can fix into one line."""

    def invoke(self, ctx):
        for channel in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets its escape
            if hasattr(channel, "reconfigure"):
                channel.reconfigure(errors="backslashreplace")
        for console in (out, err):  # piped or redirected output: tables take the width they need
            console.width = 10_000 if not console.is_terminal else None
        try:
            return super().invoke(ctx)
        except OptionError as e:
            raise fail(e.render(flag), EXIT_USAGE) from None
        except NamegenError as e:
            raise fail(e.render(flag)) from None
        except typer.TyperException as e:  # usage: an unknown option or command, a value that is no number
            where = getattr(e, "ctx", None)
            raise fail(e.format_message() + (f" (see {where.command_path} --help)" if where else ""),
                       e.exit_code) from None
        except MemoryError:
            advice = MEMORY_ADVICE.get(ctx.invoked_subcommand)
            raise fail("not enough memory for this request" + (f"; ask for less: {advice}" if advice else "")) from None
        except KeyboardInterrupt:  # Ctrl-C outside training (which saves, says where, and exits 130 itself)
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # the reader of the output has gone (`| head -1`): stop quietly, as `yes` does
            silence_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None


def silence_stdout() -> None:
    """Point stdout at the null device, so that the flush at exit finds no closed pipe to complain of."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a file descriptor (a test's captured output)
        pass


class Command(TyperCommand):
    """A command whose help shows an argument as man pages do, NAME... or [NAME]..., where typer
    would show {NAME}... and a Python type."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [self.options_metavar] + [argument_usage(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]

    def format_options(self, ctx, formatter) -> None:
        params = self.get_params(ctx)
        arguments = [(argument_usage(p), p.help or "") for p in params if p.param_type_name == "argument"]
        options = [p.get_help_record(ctx) for p in params if p.param_type_name == "option"]
        for title, rows in (("Arguments", arguments), ("Options", [row for row in options if row])):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def argument_usage(param) -> str:
    name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
    return name if param.required else f"[{name}]"


app = typer.Typer(
    cls=Commands,
    help="Learn a list of names with a character-level RNN, then invent new ones in the same style.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help is shown as written: no markup to swallow "[plot]" or "[default: ...]"
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(name: str | None = None):
    return app.command(name, cls=Command)


def setting(config: type, name: str, *flags: str) -> Any:
    """The typer option for a field of a config dataclass: its help, bounds and default display
    come from the field (see options.option), so each is written once."""
    spec, default = spec_of(config, name)
    text = spec.help + ("" if spec.choices or not spec.describe() else f" ({spec.describe()})")
    return typer.Option(*(flags or (flag(name),)), help=text + ".",
                        show_default=spec.default_text if default is None else not isinstance(default, bool),
                        metavar="<" + "|".join(spec.choices) + ">" if spec.choices else None)


def values_of(ctx: typer.Context, config: type, given_only: bool = False) -> dict[str, Any]:
    """This command's values for the options of `config` (with given_only, only those typed on the
    command line: a resumed run keeps the checkpoint's value for the rest)."""
    names = {f.name for f in fields(config)}
    return {name: value for name, value in ctx.params.items()
            if name in names and (not given_only or ctx.get_parameter_source(name).name == "COMMANDLINE")}


CheckpointOption = Annotated[Optional[Path], typer.Option(
    "--checkpoint", "-c", help="Checkpoint to use.",
    show_default="the best model of the last run started here, else the shipped dinosaur model")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]
ThreadsOption = Annotated[int, setting(Speed, "threads")]
SPEED = Speed()
NamesArgument = Annotated[Optional[list[str]], typer.Argument(
    help="Names to trace; without them, --count names are drawn from the data.", metavar="NAME", show_default=False)]


def checkpoint_or_default(path: Path | None, as_json: bool = False) -> Path:
    """The checkpoint named, or else the one a user means (see recent.default_checkpoint), which
    text output names on stderr: which model answered should never be a guess."""
    if path is not None:
        return path
    path, which = default_checkpoint()
    if not as_json:
        err.print(f"using {views.shown(path)}: {views.shown(which)}")
    return path


def load_run(path: Path | None, as_json: bool = False) -> tuple[Path, TrainState]:
    path = checkpoint_or_default(path, as_json)
    return path, load_checkpoint(path)


def load_model_at(path: Path | None, as_json: bool = False) -> tuple[Path, Model]:
    path = checkpoint_or_default(path, as_json)
    return path, load_model(path)


def show(view: views.View, as_json: bool) -> None:
    """Print a result: its JSON payload for scripts, or its lines for people."""
    if as_json:
        typer.echo(json.dumps(views.finite(view.payload), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        for line in view.lines:
            out.print(line)


def show_note(problem: str | None) -> None:
    """A run could not be recorded for the other commands: say so, with what to do instead."""
    if problem:
        err.print(f"note: this run could not be recorded, so other commands will not use it without -c "
                  f"({views.shown(problem)})")


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

@dataclass(frozen=True)
class TrainDisplay:
    """Options of `namegen train` that change only what it prints."""

    preview: int = option(3, "Names sampled for each epoch's line", at_least=0, at_most=100)

    def __post_init__(self):
        check(self)


# The signals that ask a run to stop and save; Windows has no SIGHUP (a closed console sends SIGBREAK there,
# which Python maps to SIGINT's handler only for Ctrl-Break): each is taken where the platform has it.
STOP_SIGNALS = {getattr(signal, name): said for name, said in
                (("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM"), ("SIGHUP", "SIGHUP"), ("SIGBREAK", "Ctrl-Break"))
                if hasattr(signal, name)}


class Progress:
    """How `train` shows a run: a tqdm bar per epoch (hidden when stderr is not a terminal), a line
    per epoch; and Ctrl-C, SIGTERM or SIGHUP (what `timeout`, `kill`, schedulers and a closed SSH
    session send) as a request to stop after the current step and save, acknowledged at once."""

    STOPPING = "stopping after the current step, then saving the run"
    STOPPING_AGAIN = "already stopping; the run is saved as soon as the current step ends"

    def __init__(self, quiet: bool, preview: int = 0):
        self.quiet, self.preview = quiet, preview
        self.bar = None
        self.stopped_by: int | None = None  # the first stop signal received

    def callbacks(self) -> Callbacks:
        return Callbacks(on_epoch_start=self.epoch_start, on_step=self.step, on_epoch_end=self.epoch_end,
                         should_stop=lambda: self.stopped_by is not None)

    @contextlib.contextmanager
    def stop_on_signals(self):
        previous = {signum: signal.signal(signum, self.request_stop) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            self.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def request_stop(self, signum, frame):
        """Every signal is acknowledged, none kills the run: a step in progress, or an epoch's end,
        finishes and is saved."""
        again = self.stopped_by is not None
        self.stopped_by = self.stopped_by or signum
        message = f"{STOP_SIGNALS[signum]}: " + (self.STOPPING_AGAIN if again else self.STOPPING)
        try:
            tqdm.write(message, file=sys.stderr)
        except OSError:  # after SIGHUP the terminal may be gone; the run is saved all the same
            pass

    def epoch_start(self, state: TrainState, names: int):
        self.close()
        self.bar = tqdm(total=names, initial=state.position, unit="name", leave=False, dynamic_ncols=True,
                        desc=f"epoch {state.epoch + 1}/{state.config.epochs}", disable=True if self.quiet else None)

    def step(self, done: int, running_loss: float):
        self.bar.update(done - self.bar.n)
        if done % 64 == 0:
            self.bar.set_postfix_str(f"loss {running_loss:.3f}", refresh=False)

    def epoch_end(self, state: TrainState, record: EpochRecord):
        self.close()
        if not self.quiet:
            out.print(views.epoch_line(state, record, preview_names(state, self.preview)))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


TRAIN = TrainConfig()


@command("train")
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[list[Path]], typer.Option(
        help="Names file, one name per line (UTF-8). Give it more than once to learn several lists in one "
             "model, each a style named after its file (see `sample --style`).",
        show_default="the bundled dinos.txt", metavar="<path>",
        parser=Path)] = None,  # typer's default coercion builds a pydantic adapter per value: 40,000 --data took 8 s
    hidden_size: Annotated[int, setting(TrainConfig, "hidden_size")] = TRAIN.hidden_size,
    style_size: Annotated[int, setting(TrainConfig, "style_size")] = TRAIN.style_size,
    learning_rate: Annotated[float, setting(TrainConfig, "learning_rate")] = TRAIN.learning_rate,
    lr_schedule: Annotated[str, setting(TrainConfig, "lr_schedule")] = TRAIN.lr_schedule,
    warmup: Annotated[float, setting(TrainConfig, "warmup")] = TRAIN.warmup,
    optimizer: Annotated[str, setting(TrainConfig, "optimizer")] = TRAIN.optimizer,
    epochs: Annotated[int, setting(TrainConfig, "epochs")] = TRAIN.epochs,
    batch_size: Annotated[int, setting(TrainConfig, "batch_size")] = TRAIN.batch_size,
    clip: Annotated[float, setting(TrainConfig, "clip")] = TRAIN.clip,
    clip_norm: Annotated[float, setting(TrainConfig, "clip_norm")] = TRAIN.clip_norm,
    embedding_size: Annotated[int, setting(TrainConfig, "embedding_size")] = TRAIN.embedding_size,
    dropout: Annotated[float, setting(TrainConfig, "dropout")] = TRAIN.dropout,
    weight_decay: Annotated[float, setting(TrainConfig, "weight_decay")] = TRAIN.weight_decay,
    patience: Annotated[Optional[int], setting(TrainConfig, "patience")] = TRAIN.patience,
    val_fraction: Annotated[float, setting(TrainConfig, "val_fraction")] = TRAIN.val_fraction,
    seed: Annotated[int, setting(TrainConfig, "seed")] = TRAIN.seed,
    case: Annotated[str, setting(TrainConfig, "case")] = TRAIN.case,
    max_steps: Annotated[Optional[int], setting(TrainConfig, "max_steps")] = TRAIN.max_steps,
    eval_train: Annotated[bool, setting(TrainConfig, "eval_train")] = TRAIN.eval_train,
    out_dir: Annotated[Optional[Path], typer.Option(
        help="Where checkpoints go: <data name>.latest.npz after every epoch, <data name>.best.npz for the best "
             "validation loss.", show_default="checkpoints", file_okay=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue the run saved in this checkpoint, writing back to it; options not given keep "
             "the checkpoint's values.")] = None,
    engine: Annotated[str, setting(Speed, "engine")] = SPEED.engine,
    threads: ThreadsOption = SPEED.threads,
    preview: Annotated[int, setting(TrainDisplay, "preview")] = TrainDisplay.preview,
    as_json: JsonOption = False,
):
    """Train a model on a names file, saving checkpoints after every epoch.

    Example: namegen train --data data/dinos.txt --epochs 25
    """
    display, speed = TrainDisplay(preview), Speed(engine, threads)
    run = start_run(data, out_dir=out_dir, resume=resume, **values_of(ctx, TrainConfig, given_only=True))
    progress = Progress(quiet=as_json, preview=display.preview)
    with blas_threads(speed.threads), progress.stop_on_signals():  # from here on a signal stops and saves the run
        choice = choose_engine(run.state.config, speed.engine)  # loads numba's kernel
        show_note(record_run(run.checkpoint))
        if not as_json:
            out.print(views.run_header(run, choice.engine))
        if choice.problem or (choice.note and speed.engine != "auto"):  # the header names the path; asked: why not numba
            err.print("note: " + views.shown(choice.problem or choice.note))
        result = train(run.state, run.checkpoint, progress.callbacks(), choice.engine)
    stopped_by = STOP_SIGNALS.get(progress.stopped_by) if result.reason == "interrupted" else None
    summary = views.run_summary(run, result, stopped_by)
    if stopped_by and not as_json:
        err.print(*summary.lines)  # where it saved and how to resume: for whoever stopped it
    else:
        show(summary, as_json)
    if stopped_by:
        raise typer.Exit(128 + progress.stopped_by)  # the shell's code for a command ended by that signal


# ------------------------------------------------------------------------------------------ tune

class TuneProgress(Progress):
    """How `tune` shows a search: one bar for the budget, a line per trial stopped at a rung."""

    STOPPING = "stopping the current trial, then keeping the best model so far"
    STOPPING_AGAIN = "already stopping; the best model is kept as soon as the current step ends"

    def __init__(self, quiet: bool, budget: float):
        super().__init__(quiet)
        self.budget, self.started = budget, time.perf_counter()
        self.best = math.inf
        self.bar = tqdm(total=round(budget), unit="s", leave=False, dynamic_ncols=True, desc="tune",
                        bar_format="{desc} {bar} {n:.0f}/{total:.0f}s {postfix}", disable=True if quiet else None)

    def callbacks(self) -> TuneCallbacks:
        return TuneCallbacks(on_trial_end=self.trial_end, on_tick=self.tick,
                             should_stop=lambda: self.stopped_by is not None)

    def tick(self, now: float):
        self.bar.n = min(self.budget, now - self.started)
        self.bar.refresh(lock_args=(False,))

    def trial_end(self, trial):
        self.best = min(self.best, trial.best_val_loss)
        self.bar.set_postfix_str(f"best val {self.best:.3f}", refresh=False)
        if not self.quiet:
            with tqdm.external_write_mode(file=sys.stdout):
                out.print(views.trial_line(trial, self.best))


@command("tune")
def tune_command(
    data: Annotated[Optional[Path], typer.Option(help="Names file, one name per line (UTF-8).",
                                                 show_default="the bundled dinos.txt")] = None,
    budget: Annotated[str, typer.Option(help="Wall time for the search: 90s, 3m, 1h30m.")] = "3m",
    val_fraction: Annotated[float, setting(TrainConfig, "val_fraction")] = TRAIN.val_fraction,
    seed: Annotated[int, setting(TrainConfig, "seed")] = TRAIN.seed,
    case: Annotated[str, setting(TrainConfig, "case")] = TRAIN.case,
    out_dir: Annotated[Optional[Path], typer.Option(
        help="Where the best model goes: <data name>~tuned.best.npz, unless a better one is there already.",
        show_default="checkpoints", file_okay=False)] = None,
    engine: Annotated[str, setting(Speed, "engine")] = SPEED.engine,
    threads: ThreadsOption = SPEED.threads,
    as_json: JsonOption = False,
):
    """Search hidden size, dropout, optimizer, step size and batch size within a time budget
    (successive halving on the validation names), and keep the best model.

    Example: namegen tune --data data/dinos.txt --budget 3m
    """
    seconds, speed = parse_duration(budget), Speed(engine, threads)
    base = TrainConfig(val_fraction=val_fraction, seed=seed, case=case)
    names = read_names(data, case)
    files = RunFiles.for_data(data, out_dir).tuned()
    check_checkpoint_dir(files.directory)
    with exclusive_run(files.latest):  # refused now, before numba loads, if another search holds it or it is no lock
        pass
    if not as_json:
        out.print(f"tuning on [bold]{views.shown(names.source)}[/] for {duration_text(seconds)}: rounds of {ROUND_SIZE} "
                  f"settings, the best third of each kept at {', '.join(map(str, RUNG_EPOCHS))} epochs")
    problem = choose_engine(base, speed.engine).problem  # the kernel loads once, before the search
    if problem:
        err.print("note: " + views.shown(problem))
    progress = TuneProgress(as_json, seconds)
    with blas_threads(speed.threads), progress.stop_on_signals():
        result = tune(names, base, seconds, files, progress.callbacks(), speed.engine)
    if result.best is None:
        if progress.stopped_by:
            err.print("interrupted before any trial finished an epoch; nothing was saved")
            raise typer.Exit(128 + progress.stopped_by)
        if result.problem:
            raise result.problem
        raise TrainingError(f"no trial finished an epoch in {result.seconds:.0f}s; give tune a longer ",
                            OptionName("budget"))
    show_note(record_run(result.checkpoint))
    show(views.tune_summary(result, reproduce_command(str(data) if data else None, result.best)), as_json)
    if result.problem:
        raise result.problem
    if progress.stopped_by:
        raise typer.Exit(128 + progress.stopped_by)


# ---------------------------------------------------------------------------------------- sample

SAMPLE = SampleConfig()
MAX_JSON_NAMES = 1_000_000  # names a JSON answer holds: about 100 MB of memory


@command("sample")
def sample_command(
    ctx: typer.Context,
    checkpoint: CheckpointOption = None,
    count: Annotated[int, setting(SampleConfig, "count", "--count", "-n")] = SAMPLE.count,
    temperature: Annotated[float, setting(SampleConfig, "temperature")] = SAMPLE.temperature,
    top_k: Annotated[int, setting(SampleConfig, "top_k")] = SAMPLE.top_k,
    prefix: Annotated[str, setting(SampleConfig, "prefix")] = SAMPLE.prefix,
    min_length: Annotated[int, setting(SampleConfig, "min_length")] = SAMPLE.min_length,
    max_length: Annotated[Optional[int], setting(SampleConfig, "max_length")] = SAMPLE.max_length,
    novel: Annotated[bool, setting(SampleConfig, "novel")] = SAMPLE.novel,
    unique: Annotated[bool, setting(SampleConfig, "unique")] = SAMPLE.unique,
    style: Annotated[str, setting(SampleConfig, "style")] = SAMPLE.style,
    seed: Annotated[Optional[int], setting(SampleConfig, "seed")] = SAMPLE.seed,
    threads: ThreadsOption = SPEED.threads,
    as_json: JsonOption = False,
):
    """Invent names from a checkpoint.

    Example: namegen sample -n 5 --prefix ste --novel --seed 1
    """
    config = SampleConfig(**values_of(ctx, SampleConfig))
    if as_json and config.count > MAX_JSON_NAMES:
        raise OptionError(OptionName("count"), f" above {MAX_JSON_NAMES:,} needs text output, which prints each name "
                          "as it is drawn; JSON is printed once every name is")
    path, model = load_model_at(checkpoint, as_json)
    with blas_threads(Speed(threads=threads).threads):
        if as_json:
            rejected = Counter()
            show(views.names(path, model, sample(model, config, rejected=rejected), seed, rejected), as_json)
            return
        for name in stream(model, config):  # a failure comes after the names found: they are printed
            typer.echo(views.visible(name))


# ---------------------------------------------------------------------------- evaluate and score

@command("evaluate")
def evaluate_command(
    checkpoint: CheckpointOption = None,
    data: Annotated[Optional[Path], typer.Option(help="Names file to evaluate on.",
                                                 show_default="the checkpoint's own train and validation names")] = None,
    threads: ThreadsOption = SPEED.threads,
    as_json: JsonOption = False,
):
    """Mean negative log-likelihood per character and per name, and perplexity.

    Example: namegen evaluate --checkpoint checkpoints/dinos.npz --data data/dinos.txt
    """
    path, state = load_run(checkpoint, as_json)
    with blas_threads(Speed(threads=threads).threads):
        show(views.evaluation(path, evaluate_sets(state, data)), as_json)


@command("score")
def score_command(
    names: Annotated[list[str], typer.Argument(help="Names to score.", metavar="NAME", show_default=False)],
    checkpoint: CheckpointOption = None,
    threads: ThreadsOption = SPEED.threads,
    as_json: JsonOption = False,
):
    """How plausible each name is to the model: its negative log-likelihood (lower is likelier).

    Example: namegen score Tyrannosaurus Xyzzy
    """
    path, state = load_run(checkpoint, as_json)
    with blas_threads(Speed(threads=threads).threads):
        show(views.scores(path, score(state.model, names, state.val_idx)), as_json)


# -------------------------------------------------------------------------------------------- info

@command("info")
def info_command(
    path: Annotated[Optional[Path], typer.Argument(help="Checkpoint to describe; as for --checkpoint when left out.",
                                                   metavar="CHECKPOINT", show_default=False)] = None,
    as_json: JsonOption = False,
):
    """Configuration, data, progress, losses and vocabulary of a checkpoint.

    Example: namegen info checkpoints/dinos.npz
    """
    path, state = load_run(path, as_json)
    show(views.info(path, state), as_json)


# ------------------------------------------------------------------------------- looking inside

GRADCHECK = GradcheckConfig()


@command("gradcheck")
def gradcheck_command(
    ctx: typer.Context,
    names: NamesArgument = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="Model to check.",
                                                       show_default="a small random model")] = None,
    count: Annotated[int, setting(GradcheckConfig, "count")] = GRADCHECK.count,
    entries: Annotated[int, setting(GradcheckConfig, "entries")] = GRADCHECK.entries,
    truncate: Annotated[Optional[int], setting(GradcheckConfig, "truncate")] = GRADCHECK.truncate,
    threshold: Annotated[float, setting(GradcheckConfig, "threshold")] = GRADCHECK.threshold,
    seed: Annotated[int, setting(GradcheckConfig, "seed")] = GRADCHECK.seed,
    as_json: JsonOption = False,
):
    """Compare backpropagation with central finite differences in float64, clipping off.

    Exits with 1 if any parameter's max relative error is above --threshold.

    Example: namegen gradcheck --checkpoint checkpoints/dinos.npz --truncate 3
    """
    config = GradcheckConfig(**values_of(ctx, GradcheckConfig))
    model = load_model(checkpoint) if checkpoint else random_model(config.seed)
    label = str(checkpoint) if checkpoint else f"a random model (hidden {model.hidden_size})"
    with tqdm(unit="entry", leave=False, dynamic_ncols=True, desc="gradcheck", disable=True if as_json else None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        checked = gradient_check(model, config, names, progress)
    show(views.gradient_check(label, model, checked), as_json)
    if not checked.passed:
        if as_json:
            raise typer.Exit(EXIT_ERROR)
        raise fail(f"max relative error {checked.worst:.2e} is above {config.threshold:.0e}")


FLOW = FlowConfig()


@command("diagnose")
def diagnose_command(
    ctx: typer.Context,
    names: NamesArgument = None,
    checkpoint: CheckpointOption = None,
    count: Annotated[int, setting(FlowConfig, "count")] = FLOW.count,
    max_distance: Annotated[int, setting(FlowConfig, "max_distance")] = FLOW.max_distance,
    seed: Annotated[int, setting(FlowConfig, "seed")] = FLOW.seed,
    demo_mode: Annotated[bool, typer.Option("--demo", help="Instead: models with chosen singular values of Whh, "
                                                            "showing vanishing and exploding gradients; "
                                                            "`--demo counting`: the linear counting RNN, its cost "
                                                            "cliff, and Rprop.")] = False,
    activation: Annotated[str, typer.Option(help="With --demo: the hidden unit, tanh or sigmoid (derivative at most "
                                                 "0.25).", metavar="<tanh|sigmoid>")] = "tanh",
    surface_mode: Annotated[bool, typer.Option("--surface", help="Instead: the loss on the checkpoint's validation "
                                                                 "names with Wxh scaled by a and Whh by r, and the "
                                                                 "gradient norm along r.")] = False,
    as_json: JsonOption = False,
):
    """How the gradient flows back through time, and whether it vanishes or explodes.

    Example: namegen diagnose --checkpoint checkpoints/dinos.npz
    """
    if activation not in ACTIVATIONS:
        raise OptionError(OptionName("activation"), f" must be one of {', '.join(ACTIVATIONS)}, not {shortened(activation)}")
    which = (names or ["gradients"])[0]
    if demo_mode and (len(names or []) > 1 or which not in DEMOS):
        raise OptionError(OptionName("demo"), f" takes one of {', '.join(DEMOS)}, not {shortened(' '.join(names))}")
    mode = "surface" if surface_mode else f"demo {which}" if demo_mode else "flow"
    refuse_unused(ctx, DIAGNOSE_MODES[mode], DIAGNOSE_MODE_NAMES[mode])
    config = FlowConfig(**values_of(ctx, FlowConfig))  # its bounds are checked before any file is read
    if mode == "demo counting":
        return show(views.counting(counting_demo()), as_json)
    if mode == "demo gradients":
        return show(views.demo(sigmoid_demo() if activation == "sigmoid" else demo()), as_json)
    if mode == "surface":
        path, state = load_run(checkpoint, as_json)
        return show(views.surface(path, surface_of(state)), as_json)
    path, model = load_model_at(checkpoint, as_json)
    show(views.diagnosis(path, diagnose(model.in_style(), config, names)), as_json)  # several lists: blended


DEMOS = ("gradients", "counting")
# The options each mode of `diagnose` acts on; any other typed on the command line is refused.
DIAGNOSE_MODES = {"flow": {"names", "checkpoint", "count", "max_distance", "seed", "as_json"},
                  "demo gradients": {"names", "demo_mode", "activation", "as_json"},
                  "demo counting": {"names", "demo_mode", "as_json"},
                  "surface": {"checkpoint", "surface_mode", "as_json"}}
DIAGNOSE_MODE_NAMES = {"flow": "`diagnose` of a checkpoint's gradient flow (--demo and --surface show the others)",
                       "demo gradients": "`diagnose --demo`", "demo counting": "`diagnose --demo counting`",
                       "surface": "`diagnose --surface`"}


def refuse_unused(ctx: typer.Context, used: set[str], mode: str) -> None:
    """Every option typed on the command line acts or is refused: one that `mode` does not use is an
    OptionError naming it, never silently ignored."""
    for param in ctx.command.params:
        if param.name not in used and ctx.get_parameter_source(param.name).name == "COMMANDLINE":
            what = max(param.opts, key=len) if param.param_type_name == "option" else "a NAME argument"
            raise OptionError(f"{what} does not apply to {mode}")


def surface_of(state: TrainState):
    """The loss surface on the run's validation names, or on all its names if it has none."""
    if len(state.val_idx):
        return loss_surface(state.model, state.val_idx, "validation")
    return loss_surface(state.model, np.arange(len(state.model.names)), "training")


@command("plot")
def plot_command(
    ctx: typer.Context,
    checkpoint: CheckpointOption = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write a PNG here (needs namegen[plot]).",
                                                     show_default="draw in the terminal", dir_okay=False)] = None,
    count: Annotated[int, setting(FlowConfig, "count")] = FLOW.count,
    max_distance: Annotated[int, setting(FlowConfig, "max_distance")] = FLOW.max_distance,
    surface_mode: Annotated[bool, typer.Option("--surface", help="Instead: the loss surface of `diagnose "
                                                                 "--surface`, with the trained point marked.")] = False,
):
    """Loss curves, clipping and gradient norms per epoch, and the gradient-flow curve.

    Example: namegen plot --out training.png
    """
    refuse_unused(ctx, {"checkpoint", "out_file", "surface_mode"} | (set() if surface_mode else {"count", "max_distance"}),
                  "`plot --surface`")
    config = FlowConfig(**values_of(ctx, FlowConfig))
    path, state = load_run(checkpoint)
    if surface_mode:
        surface = surface_of(state)
        if out_file is None:
            return show(views.surface(path, surface), False)
        write_surface_png(out_file, surface, f"namegen: {state.source}, loss surface")
        return out.print(f"wrote {views.shown(out_file)}")
    if not state.history:
        raise NamegenError(f"{path} has no completed epoch to plot yet")
    flow = diagnose(state.model.in_style(), config).flow
    if out_file is None:
        for line in views.curves(path, state.history, flow):
            out.print(line)
        return
    write_png(out_file, state.history, flow, f"namegen: {state.source}")
    out.print(f"wrote {views.shown(out_file)}")


def main():
    try:
        app(prog_name="namegen")
    except KeyboardInterrupt:  # Ctrl-C while the command line is parsed, before a command runs
        err.print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
