"""How the command line meets a terminal: its two consoles, options built from the config fields,
one error line per failure a user can fix, a result as JSON or as lines, and the progress of a run,
a search or a check, with the signals that stop them. cli.py holds the commands; with this module
it is the only code that prints.

Every error a user can fix ends in `Commands.invoke` as one line on stderr: exit code 2 for an
impossible option value or bad usage, 1 for a problem with a file or a request. A bug is not
caught there: it shows its traceback and exits with 1.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from tqdm import tqdm
from typer.core import TyperCommand, TyperGroup

from . import views
from .checkpoint import load_checkpoint, load_model
from .errors import NamegenError, OptionError
from .model import Model
from .options import SPEC, TEXTS, field_kinds, spec_of
from .recent import default_checkpoint
from .state import EpochRecord, TrainState
from .training import Callbacks, preview_names
from .tune import TuneCallbacks

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


# ------------------------------------------------------------------- options from config fields

def setting(config: type, name: str, *flags: str) -> Any:
    """The typer option for a field of a config dataclass: its help, bounds and default display
    come from the field (see options.option), so each is written once."""
    spec, default = spec_of(config, name)
    text = spec.help + ("" if spec.choices or not spec.describe() else f" ({spec.describe()})")
    if not flags:
        flags = (f"{flag(name)}/--no-{name.replace('_', '-')}",) if default is True else (flag(name),)
    return typer.Option(*flags, help=text + ".",
                        show_default=spec.default_text if default is None or default == () else not isinstance(default, bool),
                        metavar="<" + "|".join(spec.choices) + ">" if spec.choices else "<str>" if default == () else None)


def with_options(*configs: type, only: tuple[str, ...] = (), flags: dict[str, tuple[str, ...]] | None = None):
    """Give a command a typer option for each field of the config dataclasses (or those in `only`),
    named, typed, defaulted and explained by the field, after the command's own parameters; the
    command takes them as keyword arguments (**options). Each option is spelled once: on its field."""
    def decorate(command):
        signature = inspect.signature(command, eval_str=True)  # the module may write its annotations as strings
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        added = []
        for config in configs:
            kinds = field_kinds(config)
            for f in fields(config):
                if SPEC not in f.metadata or (only and f.name not in only):
                    continue
                kind, optional = kinds[f.name]
                kind = list[str] if kind == TEXTS else kind  # given once per value; the config keeps a tuple
                annotation = Annotated[Optional[kind] if optional else kind, setting(config, f.name, *(flags or {}).get(f.name, ()))]
                added.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                               annotation=annotation))
        command.__signature__ = signature.replace(parameters=own + added)
        return command
    return decorate


def values_of(ctx: typer.Context, config: type, given_only: bool = False) -> dict[str, Any]:
    """This command's values for the options of `config` (with given_only, only those typed on the
    command line: a resumed run keeps the checkpoint's value for the rest)."""
    names = {f.name for f in fields(config)}
    return {name: tuple(value) if isinstance(value, list) else value for name, value in ctx.params.items()
            if name in names and (not given_only or ctx.get_parameter_source(name).name == "COMMANDLINE")}


def refuse_unused(ctx: typer.Context, used: set[str], mode: str) -> None:
    """Every option typed on the command line acts or is refused: one that `mode` does not use is an
    OptionError naming it, never silently ignored."""
    for param in ctx.command.params:
        if param.name not in used and ctx.get_parameter_source(param.name).name == "COMMANDLINE":
            what = max(param.opts, key=len) if param.param_type_name == "option" else "a NAME argument"
            raise OptionError(f"{what} does not apply to {mode}")


CheckpointOption = Annotated[Optional[Path], typer.Option(
    "--checkpoint", "-c", help="Checkpoint to use.",
    show_default="the best model of the last run started here, else the shipped dinosaur model")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]
NamesArgument = Annotated[Optional[list[str]], typer.Argument(
    help="Names to trace; without them, --count names are drawn from the data.", metavar="NAME", show_default=False)]


# ----------------------------------------------------------------------------------- results

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


def show_note(problem: str | None, what: str = "note: ") -> None:
    """One line on stderr for something a user should know that did not stop the command."""
    if problem:
        err.print(what + views.shown(problem))


def unrecorded(problem: str | None) -> None:
    """A run could not be recorded for the other commands: say so, with what to do instead."""
    show_note(problem and f"this run could not be recorded, so other commands will not use it without -c ({problem})")


# ---------------------------------------------------------------------------------- progress

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

    def exit_if_stopped(self) -> None:
        """End the command with the shell's code for a command ended by the signal that stopped it."""
        if self.stopped_by:
            raise typer.Exit(128 + self.stopped_by)

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


@contextlib.contextmanager
def counting_bar(unit: str, quiet: bool):
    """A bar for a long count (`gradcheck`'s entries): yields the on_progress(done, total) to pass on."""
    with tqdm(unit=unit, leave=False, dynamic_ncols=True, disable=True if quiet else None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress
