"""The `namegen` commands: parse the options, call one library function, render the result.

Each command's options come from the fields of the config dataclasses (terminal.with_options), so
an option is spelled once, on its field. How output, errors and progress reach the terminal is in
terminal.py; with it, this is the only module that prints.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__, views
from .checkpoint import load_model
from .diagnostics import DEMOS, DemoConfig, FlowConfig, diagnose, run_demo, run_surface
from .errors import NamegenError, OptionError, OptionName, SamplingError, plural, shortened
from .evaluation import drawn_nll, evaluate_sets, score
from .export import ExportConfig, export, refuse_to_overwrite_a_checkpoint
from .gradcheck import GradcheckConfig, gradient_check, random_model
from .likeliest import most_likely
from .options import check, option
from .plot import write_png, write_surface_png
from .recent import record_run
from .sampling import SampleConfig, Tally, sampled, stream
from .similar import similar
from .state import TrainConfig
from .terminal import (EXIT_ERROR, EXIT_INTERRUPTED, STOP_SIGNALS, CheckpointOption, Command, Commands, JsonOption,
                       NamesArgument, Progress, TuneProgress, counting_bar, err, fail, load_model_at, load_run, out,
                       refuse_unused, show, show_note, unrecorded, values_of, with_options)
from .threads import blas_threads
from .training import Speed, StopReason, choose_engine, start_run, train
from .tune import (ETA, MAX_JOBS, Search, all_names_command, default_jobs, duration_text, longer_command,
                   reproduce_command)

app = typer.Typer(
    cls=Commands,
    help="Learn a list of names with a character-level RNN, then invent new ones in the same style.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help is shown as written: no markup to swallow "[plot]" or "[default: ...]"
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(name: str | None = None):
    return app.command(name, cls=Command)


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


@command("train")
@with_options(TrainConfig, Speed, TrainDisplay)
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[list[Path]], typer.Option(
        help="Names file, one name per line (UTF-8). Give it more than once to learn several lists in one "
             "model, each a style named after its file (see `sample --style`).",
        show_default="the bundled dinos.txt", metavar="<path>",
        parser=Path)] = None,  # typer's default coercion builds a pydantic adapter per value: 40,000 --data took 8 s
    out_dir: Annotated[Optional[Path], typer.Option(
        help="Where checkpoints go: <data name>.latest.npz after every epoch, <data name>.best.npz for the best "
             "validation loss.", show_default="checkpoints", file_okay=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue the run saved in this checkpoint, writing back to it; options not given keep "
             "the checkpoint's values.")] = None,
    as_json: JsonOption = False,
    **options,
):
    """Train a model on a names file, saving checkpoints after every epoch.

    Example: namegen train --data data/dinos.txt --epochs 25
    """
    display, speed = TrainDisplay(**values_of(ctx, TrainDisplay)), Speed(**values_of(ctx, Speed))
    run = start_run(data, out_dir=out_dir, resume=resume, **values_of(ctx, TrainConfig, given_only=True))
    progress = Progress(quiet=as_json, preview=display.preview)
    with blas_threads(speed.threads), progress.stop_on_signals():  # from here on a signal stops and saves the run
        choice = choose_engine(run.state.config, speed.engine)  # loads numba's kernel
        unrecorded(record_run(run.checkpoint))
        if not as_json:
            out.print(views.run_header(run, choice.engine))
        show_note(choice.problem or (choice.note if speed.engine != "auto" else None))  # asked for numba: why not
        result = train(run.state, run.checkpoint, progress.callbacks(), choice.engine)
    stopped_by = STOP_SIGNALS.get(progress.stopped_by) if result.reason is StopReason.INTERRUPTED else None
    summary = views.run_summary(run, result, stopped_by)
    if stopped_by and not as_json:
        err.print(*summary.lines)  # where it saved and how to resume: for whoever stopped it
    else:
        show(summary, as_json)
    if stopped_by:
        progress.exit_if_stopped()


# ------------------------------------------------------------------------------------------ tune

@command("tune")
@with_options(TrainConfig, Speed, only=("val_fraction", "seed", "case", "dtype", "engine", "threads"))
def tune_command(
    ctx: typer.Context,
    data: Annotated[Optional[list[Path]], typer.Option(
        help="Names file, one name per line (UTF-8). Give it more than once to tune a model of several lists, "
             "each a style.", show_default="the bundled dinos.txt", parser=Path)] = None,
    budget: Annotated[str, typer.Option(help="Wall time for the search: 90s, 3m, 1h30m.")] = "3m",
    jobs: Annotated[Optional[int], typer.Option(
        help="Runs trained at once: one in this process, the others in worker processes, each with --threads "
             "BLAS threads. A run's result is the same whatever the jobs.", show_default="the cores namegen may use",
        min=1, max=MAX_JOBS)] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        help="Where the best model goes: <data name>~tuned.best.npz, unless a better one is there already.",
        show_default="checkpoints", file_okay=False)] = None,
    as_json: JsonOption = False,
    **options,
):
    """Search hidden size, embedding, dropout, weight decay, optimizer, step size and batch size
    within a time budget (asynchronous successive halving on the validation names), and keep the
    best model.

    Example: namegen tune --data data/dinos.txt --budget 3m
    """
    speed = Speed(**values_of(ctx, Speed))
    jobs = default_jobs() if jobs is None else jobs
    search = Search.prepare(data, budget, out_dir, **values_of(ctx, TrainConfig))
    if not as_json:
        out.print(f"tuning on [bold]{views.shown(search.names.source)}[/] for {duration_text(search.budget)}, "
                  f"{plural(jobs, 'job')}: runs of {', '.join(map(str, search.rungs))} epochs, the best 1/{ETA} of "
                  "each rung trained again at the next")
    show_note(choose_engine(search.base, speed.engine).problem)  # the kernel loads once, before the search
    progress = TuneProgress(as_json, search.budget)
    with blas_threads(speed.threads), progress.stop_on_signals():
        result = search.run(progress.callbacks(), speed.engine, jobs, speed.threads)
    if result.best is None:
        err.print("interrupted before any trial finished an epoch; nothing was saved")
        progress.exit_if_stopped()
    unrecorded(record_run(result.checkpoint))
    show(views.tune_summary(result, reproduce_command(data, result.best), longer_command(data, result.best, result.rungs),
                            all_names_command(data, result.best)), as_json)
    if result.problem:
        raise result.problem
    progress.exit_if_stopped()


# ---------------------------------------------------------------------------------------- sample

MAX_JSON_NAMES = 1_000_000  # names a JSON answer holds: about 100 MB of memory


@command("sample")
@with_options(SampleConfig, Speed, only=tuple(SampleConfig.__dataclass_fields__) + ("threads",),
              flags={"count": ("--count", "-n")})
def sample_command(ctx: typer.Context, checkpoint: CheckpointOption = None, as_json: JsonOption = False, **options):
    """Invent names from a checkpoint.

    Example: namegen sample -n 5 --prefix ste --novel --seed 1
    """
    config = SampleConfig(**values_of(ctx, SampleConfig))
    if as_json and config.count > MAX_JSON_NAMES:
        raise OptionError(OptionName("count"), f" above {MAX_JSON_NAMES:,} needs text output, which prints each name "
                          "as it is drawn; JSON is printed once every name is")
    path, model = load_model_at(checkpoint, as_json)
    with blas_threads(Speed(**values_of(ctx, Speed)).threads):
        if config.most_likely:
            return shown_with_problem(lambda: most_likely(model, config),
                                      lambda found: views.likeliest(path, model, config, found), as_json)
        if as_json or config.similar_to:
            rejected = Tally()
            find = similar if config.similar_to else sampled
            return shown_with_problem(lambda: find(model, config, rejected=rejected), lambda found: views.names(
                path, model, config, found, drawn_nll(model, found, config.style), rejected), as_json)
        try:  # a failure comes after the names found: they are printed; one write a name, no flush each
            for name in stream(model, config):
                sys.stdout.write(views.visible(name) + "\n")
        finally:
            sys.stdout.flush()


def shown_with_problem(find, view, as_json: bool) -> None:
    """Show the view of what `find` found; if it ran out of draws, the view of the names it found
    before, and then the error."""
    try:
        found, problem = find(), None
    except SamplingError as e:
        found, problem = e.found, e
    show(view(found), as_json)
    if problem:
        raise problem


# ---------------------------------------------------------------------------- evaluate and score

@command("evaluate")
@with_options(Speed, only=("threads",))
def evaluate_command(
    ctx: typer.Context,
    checkpoint: CheckpointOption = None,
    data: Annotated[Optional[Path], typer.Option(help="Names file to evaluate on.",
                                                 show_default="the checkpoint's own train and validation names")] = None,
    as_json: JsonOption = False,
    **options,
):
    """Mean negative log-likelihood per character and per name, and perplexity.

    Example: namegen evaluate --checkpoint checkpoints/dinos.npz --data data/dinos.txt
    """
    path, state = load_run(checkpoint, as_json)
    with blas_threads(Speed(**values_of(ctx, Speed)).threads):
        show(views.evaluation(path, evaluate_sets(state, data)), as_json)


@command("score")
@with_options(Speed, only=("threads",))
def score_command(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Names to score.", metavar="NAME", show_default=False)],
    checkpoint: CheckpointOption = None,
    as_json: JsonOption = False,
    **options,
):
    """How plausible each name is to the model: its negative log-likelihood (lower is likelier).

    Example: namegen score Tyrannosaurus Xyzzy
    """
    path, state = load_run(checkpoint, as_json)
    with blas_threads(Speed(**values_of(ctx, Speed)).threads):
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


@command("export")
@with_options(ExportConfig)
def export_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced atomically).", show_default=False)],
    checkpoint: CheckpointOption = None,
    **options,
):
    """Write a model for use outside Python: a web page, an ES module, slim JSON or npz weights, or ONNX.

    Example: namegen export --to html --out dinos.html
    """
    config = ExportConfig(**values_of(ctx, ExportConfig))
    path, model = load_model_at(checkpoint, False)
    refuse_to_overwrite_a_checkpoint(out, path)
    size = export(model, config, out, title=path.name.split(".")[0])
    err.print(f"wrote {views.shown(out)} ({size:,} bytes)" + (": open it in a browser" if config.to == "html" else ""))


# ------------------------------------------------------------------------------- looking inside

@command("gradcheck")
@with_options(GradcheckConfig)
def gradcheck_command(
    ctx: typer.Context,
    names: NamesArgument = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="Model to check.",
                                                       show_default="a small random model")] = None,
    as_json: JsonOption = False,
    **options,
):
    """Compare backpropagation with central finite differences in float64, clipping off.

    Exits with 1 if any parameter's max relative error is above --threshold.

    Example: namegen gradcheck --checkpoint checkpoints/dinos.npz --truncate 3
    """
    config = GradcheckConfig(**values_of(ctx, GradcheckConfig))
    model = load_model(checkpoint) if checkpoint else random_model(config.seed)
    label = str(checkpoint) if checkpoint else f"a random model (hidden {model.hidden_size})"
    with counting_bar("entry", quiet=as_json) as progress:
        checked = gradient_check(model, config, names, progress)
    show(views.gradient_check(label, model, checked), as_json)
    if not checked.passed:
        if as_json:
            raise typer.Exit(EXIT_ERROR)
        raise fail(f"max relative error {checked.worst:.2e} is above {config.threshold:.0e}")


# The options each mode of `diagnose` acts on, and how its messages name it; any other typed is refused.
DIAGNOSE_MODES = {
    "flow": ({"names", "checkpoint", "count", "max_distance", "seed", "as_json"},
             "`diagnose` of a checkpoint's gradient flow (--demo and --surface show the others)"),
    "demo": ({"names", "demo_mode", "activation", "as_json"}, "`diagnose --demo`"),
    "surface": ({"checkpoint", "surface_mode", "as_json"}, "`diagnose --surface`"),
}


@command("diagnose")
@with_options(FlowConfig, DemoConfig, only=("count", "max_distance", "seed", "activation"))
def diagnose_command(
    ctx: typer.Context,
    names: NamesArgument = None,
    checkpoint: CheckpointOption = None,
    demo_mode: Annotated[bool, typer.Option("--demo", help="Instead: models with chosen singular values of Whh, "
                                                            "showing vanishing and exploding gradients; "
                                                            "`--demo counting`: the linear counting RNN, its cost "
                                                            "cliff, and Rprop.")] = False,
    surface_mode: Annotated[bool, typer.Option("--surface", help="Instead: the loss on the checkpoint's validation "
                                                                 "names with Wxh scaled by a and Whh by r, and the "
                                                                 "gradient norm along r.")] = False,
    as_json: JsonOption = False,
    **options,
):
    """How the gradient flows back through time, and whether it vanishes or explodes.

    Example: namegen diagnose --checkpoint checkpoints/dinos.npz
    """
    mode = "surface" if surface_mode else "demo" if demo_mode else "flow"
    used, described = DIAGNOSE_MODES[mode]
    refuse_unused(ctx, used, described)
    if mode == "demo":
        if len(names or []) > 1 or (names or ["gradients"])[0] not in DEMOS:
            raise OptionError(OptionName("demo"), f" takes one of {', '.join(DEMOS)}, not {shortened(' '.join(names))}")
        return show(views.demo_view(run_demo(DemoConfig((names or ["gradients"])[0], options["activation"]))), as_json)
    config = FlowConfig(**values_of(ctx, FlowConfig))  # its bounds are checked before any file is read
    if mode == "surface":
        path, state = load_run(checkpoint, as_json)
        return show(views.surface(path, run_surface(state)), as_json)
    path, model = load_model_at(checkpoint, as_json)
    show(views.diagnosis(path, diagnose(model.in_style(), config, names)), as_json)  # several lists: blended


@command("plot")
@with_options(FlowConfig, only=("count", "max_distance"))
def plot_command(
    ctx: typer.Context,
    checkpoint: CheckpointOption = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write a PNG here (needs namegen[plot]).",
                                                     show_default="draw in the terminal", dir_okay=False)] = None,
    surface_mode: Annotated[bool, typer.Option("--surface", help="Instead: the loss surface of `diagnose "
                                                                 "--surface`, with the trained point marked.")] = False,
    **options,
):
    """Loss curves, clipping and gradient norms per epoch, and the gradient-flow curve.

    Example: namegen plot --out training.png
    """
    refuse_unused(ctx, {"checkpoint", "out_file", "surface_mode"} | (set() if surface_mode else {"count", "max_distance"}),
                  "`plot --surface`")
    config = FlowConfig(**values_of(ctx, FlowConfig))
    path, state = load_run(checkpoint)
    if surface_mode:
        surface = run_surface(state)
        if out_file is None:
            return show(views.surface(path, surface), False)
        write_surface_png(out_file, surface, f"namegen: {state.source}, loss surface")
        return out.print(f"wrote {views.shown(out_file)}")
    if not state.history:
        raise NamegenError(f"{path} has no completed epoch to plot yet")
    flow = diagnose(state.model.in_style(), config).flow
    if out_file is None:
        return show(views.View({}, views.curves(path, state.history, flow)), False)
    write_png(out_file, state.history, flow, f"namegen: {state.source}")
    out.print(f"wrote {views.shown(out_file)}")


def main():
    try:
        app(prog_name="namegen")
    except KeyboardInterrupt:  # Ctrl-C while the command line is parsed, before a command runs
        err.print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
