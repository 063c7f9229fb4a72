"""The `namegen` command's entry point: Ctrl-C while namegen starts up (importing numpy, typer and
rich takes a few tenths of a second) ends as it does later, with `interrupted` and exit code 130,
never a traceback. Nothing heavy is imported before the guard: see the lazy namegen/__init__.py."""

import sys


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    run()
