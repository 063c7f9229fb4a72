"""One BLAS thread unless asked for more: the matrices of a name-sized RNN are far too small to share.

numpy hands every matrix product to its BLAS (OpenBLAS in the wheels), which starts a thread per
core. At hidden 50 a product takes a microsecond or two, less than waking a thread costs, and on
a machine where anything else runs, the threads wait for each other: training measured 2-8x
slower with the default thread count than with one. So training, sampling and evaluation hold the
BLAS to one thread while they run (threadpoolctl sets it in the loaded library, so it works
whenever numpy was imported), and `blas_threads` raises it for a large model:

    with namegen.blas_threads(4):
        namegen.train(state)
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar

from threadpoolctl import ThreadpoolController

from .errors import OptionError, OptionName

# The thread count the entry points below use; None leaves the BLAS at its own default.
_threads: ContextVar[int | None] = ContextVar("namegen_blas_threads", default=1)
_controller: ThreadpoolController | None = None  # finding the loaded BLAS takes ~1 ms: done once


def _limit(threads: int | None):
    global _controller
    if threads is None:
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=threads, user_api="blas")


@contextlib.contextmanager
def blas_threads(threads: int | None):
    """Let namegen's work inside the block use this many BLAS threads (None: the BLAS default)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise OptionError(OptionName("threads"), f" must be a whole number of at least 1 (or None), not {threads!r}")
    token = _threads.set(threads)
    try:
        with _limit(threads):
            yield
    finally:
        _threads.reset(token)


def applied():
    """A block that runs with the thread count of the enclosing blas_threads block (1 outside any)."""
    return _limit(_threads.get())


def limited(function):
    """`function`, run with the thread count of the enclosing blas_threads block (1 outside any)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with applied():
            return function(*args, **kwargs)

    return wrapper


def rescan() -> None:
    """Find the loaded BLAS libraries again at the next limit: importing numba loads SciPy's."""
    global _controller
    _controller = None
