"""Fixtures and helpers shared by the tests: small models and name lists, trained checkpoints,
damaged copies of them, and running the CLI in-process."""

import faulthandler
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from namegen import fast
from namegen.checkpoint import save_checkpoint
from namegen.cli import app
from namegen.data import NameList, parse_names, read_names
from namegen.model import random_params as make_random_params, unflatten
from namegen.state import TrainConfig, new_state
from namegen.training import train

TINY = ["Abelisaurus", "Brachiosaurus", "Ceratops", "Diplodocus", "Edmontosaurus", "Fukuiraptor",
        "Gallimimus", "Herrerasaurus", "Iguanodon", "Juravenator", "Kentrosaurus", "Lambeosaurus",
        "Maiasaura", "Nodosaurus", "Oviraptor", "Pachycephalosaurus", "Quaesitosaurus", "Rugops",
        "Stegosaurus", "Troodon", "Utahraptor", "Velociraptor", "Wuerhosaurus", "Xenotarsosaurus"]


@pytest.fixture(autouse=True, scope="session")
def state_directory(tmp_path_factory):
    """Where namegen remembers the last run of each directory: the tests' own, never the user's."""
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))


# ------------------------------------------------------------------------------------ the math

ENGINES = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not fast.available(), reason="numba is not installed (pip install 'namegen[fast]')"))]


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Each training path in turn; the compiled one in chunks of 7 names, so that stops and
    max_steps fall inside an epoch of the small lists used here, as they do in a real one."""
    monkeypatch.setattr("namegen.training.COMPILED_CHUNK", 7)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def random_params(rng):
    """Makes small models with weights large enough that every gradient path matters."""

    def make(vocab_size=7, hidden_size=5, scale=0.5):
        return unflatten(make_random_params(vocab_size, hidden_size, rng, scale), vocab_size, hidden_size)

    return make


# --------------------------------------------------------------------------------- names and runs

@pytest.fixture(scope="session")
def dinos():
    return read_names()


@pytest.fixture(scope="session")
def small_names():
    text = "\n".join(["Ab", "Abc", "Bca", "Cab", "Acab", "Bac", "Cabba", "Ba", "Ccab", "Abba", "Bacca", "Ca"])
    return parse_names(text, "small.txt")


@pytest.fixture(scope="session")
def few_dinos(dinos):
    """192 dinosaur names: quick to train."""
    return NameList(dinos.names[::8], ("start",), "few-dinos.txt")


@pytest.fixture(scope="session")
def two_letter_styles():
    """A model of two lists that share no letter (a and b; c and d), trained until each style writes
    its own: what an export must keep apart."""
    a, b = ["aaab", "aab", "abaa"] * 10, ["cccd", "ccd", "cdcc"] * 10
    state = new_state(TrainConfig(hidden_size=8, style_size=2, epochs=6, batch_size=4, optimizer="adam",
                                  learning_rate=0.05), NameList(a + b, (), "two", styles=("as", "cs"),
                                                                style_of=np.repeat([0, 1], [30, 30])))
    train(state, engine="numpy")
    return state.model


@pytest.fixture
def names_file(tmp_path):
    """Writes names (or raw bytes) to a file in tmp_path and returns its path."""

    def write(content, name="names.txt") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text("\n".join(content), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def trained_state(dinos):
    """A small model trained briefly on dinos, shared by the sampling and CLI tests."""
    state = new_state(TrainConfig(hidden_size=24, epochs=2, seed=3), dinos)
    train(state)
    return state


@pytest.fixture(scope="session")
def trained_checkpoint(trained_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "dinos.npz"
    save_checkpoint(path, trained_state)
    return path


@pytest.fixture(scope="session")
def adam_checkpoint(few_dinos, tmp_path_factory):
    """A checkpoint whose optimizer has state arrays (Adam's m and v) to damage."""
    state = new_state(TrainConfig(hidden_size=8, epochs=1, optimizer="adam"), few_dinos)
    train(state)
    path = tmp_path_factory.mktemp("adam") / "adam.npz"
    save_checkpoint(path, state)
    return path


@pytest.fixture
def damaged(tmp_path):
    """Copies a checkpoint with change(arrays) applied (key -> new array, or None to drop it)."""

    def copy(source: Path, change, name="damaged.npz") -> Path:
        with np.load(source, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays.update(change(arrays))
        out = tmp_path / name
        np.savez(out, **{k: v for k, v in arrays.items() if v is not None})
        return out

    return copy


def with_meta(arrays, **fields):
    """A change for `damaged` that replaces fields of the JSON metadata."""
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(fields)
    return {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}


# ------------------------------------------------------------------------------ resuming exactly

def assert_resumes_exactly(config, names, directory: Path, *, stop_after: int | None = None,
                           first_epochs: int | None = None, engine: str = "auto", data_for_resume=None):
    """Train `config` on `names` in two calls, the first stopped (after `stop_after` stop requests,
    mid-epoch, or at `first_epochs` epochs), saved, loaded and resumed to the end; and in one call
    from the start. The two must agree bit for bit: weights, optimizer state, generator, history."""
    from dataclasses import asdict, replace

    from namegen.checkpoint import load_checkpoint
    from namegen.state import new_state, resume_state
    from namegen.training import Callbacks

    requests = {"n": 0}

    def should_stop():
        requests["n"] += 1
        return stop_after is not None and requests["n"] >= stop_after

    first = new_state(replace(config, epochs=first_epochs) if first_epochs else config, names)
    train(first, directory / "r.latest.npz", Callbacks(should_stop=should_stop), engine)
    resumed = resume_state(load_checkpoint(directory / "r.latest.npz"), {"epochs": config.epochs}, data_for_resume)
    train(resumed, engine=engine)
    straight = new_state(config, names)
    train(straight, engine=engine)
    np.testing.assert_array_equal(resumed.weights, straight.weights)
    for key, value in straight.optimizer.state.items():
        np.testing.assert_array_equal(resumed.optimizer.state[key], value, err_msg=key)
    assert resumed.step == straight.step and resumed.optimizer.steps == straight.optimizer.steps
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state
    timeless = [{k: v for k, v in asdict(record).items() if k != "seconds"} for record in straight.history]
    assert [{k: v for k, v in asdict(record).items() if k != "seconds"} for record in resumed.history] == timeless
    return first, resumed


# ---------------------------------------------------------------------------------------- the CLI

class Ran:
    """What a command did: exit code, stdout, stderr, and any exception that escaped."""

    def __init__(self, result):
        self.code, self.stdout, self.stderr, self.exception = result.exit_code, result.stdout, result.stderr, result.exception

    def json(self):
        return json.loads(self.stdout)

    def fails_in_one_line(self, code=1, pattern=""):
        """The command exited with `code` and wrote exactly one 'error:' line to stderr, holding `pattern`."""
        assert self.code == code, (self.code, self.stdout, self.stderr)
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], self.stderr
        assert "Traceback" not in self.stdout + self.stderr


@pytest.fixture
def cli():
    """Runs `namegen ARGS` in-process: cli("sample", "-n", 3) -> Ran."""
    runner = CliRunner()
    return lambda *args: Ran(runner.invoke(app, [str(a) for a in args], prog_name="namegen"))


# ------------------------------------------------------------------------------- hostile archives

def npy_header(shape, dtype="<f8") -> bytes:
    """The header of an .npy file holding an array of `shape`, without its data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()  # the magic string, then the header


def forge_zip(path: Path, entries: dict, declared: dict | None = None) -> Path:
    """A zip of `entries` (name -> bytes), deflated, in which `declared` (name -> size) lies about
    the uncompressed size of some entries: how a decompression bomb looks from its directory."""
    import struct
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    raw = bytearray(path.read_bytes())
    for name, size in (declared or {}).items():
        encoded = name.encode()
        for signature, offset, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
            at = raw.find(signature + b"", 0)
            while at >= 0:
                if raw[at + name_at : at + name_at + len(encoded)] == encoded:
                    raw[at + offset : at + offset + 4] = struct.pack("<I", size)
                at = raw.find(signature, at + 1)
    path.write_bytes(bytes(raw))
    return path


# ------------------------------------------------------------------------ runs to kill, quickly

def own_tqdm_locks() -> None:
    """Give a forked child tqdm write locks of its own. tqdm's lock includes a multiprocessing lock,
    a semaphore that every child forked from this process shares: a sibling killed while it wrote
    a progress bar leaves it taken, and the next child's first bar waited for it forever (seen in
    CI: the child's stack ended in TqdmDefaultWriteLock.acquire). namegen's own runs are separate
    processes, each with its own lock; only this harness forks."""
    import threading

    from tqdm.std import TqdmDefaultWriteLock, tqdm

    TqdmDefaultWriteLock.th_lock = threading.RLock()
    if hasattr(TqdmDefaultWriteLock, "mp_lock"):
        del TqdmDefaultWriteLock.mp_lock
    tqdm.set_lock(TqdmDefaultWriteLock())


class Forked:
    """`namegen ARGS` in a child forked from the test process, which has imported namegen already:
    it starts in a millisecond where a new interpreter takes half a second. For the tests that
    start and kill runs many times; its output goes to the null device."""

    def __init__(self, *args):
        if fast.available():
            fast.load()  # compiled (or loaded) once, here, rather than in every child
        CliRunner().invoke(app, ["sample", "--bogus"])  # typer imports what parsing needs (pydantic) on first use
        self.stacks = tempfile.NamedTemporaryFile(prefix="namegen-forked-", suffix=".txt", delete=False).name
        self.pid = os.fork()
        if self.pid == 0:
            self._run([str(a) for a in args], self.stacks)
        self.returncode = None

    @staticmethod
    def _run(args, stacks):
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # never a stream another thread of the parent held
            faulthandler.register(signal.SIGUSR1, open(stacks, "w"), all_threads=True)  # what wait() shows if stuck
            own_tqdm_locks()
            for name in ("SIGINT", "SIGTERM", "SIGHUP"):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            sys.argv = ["namegen", *args]
            from namegen.cli import main

            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        finally:
            os._exit(code)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:  # say where it is stuck, then stop it
                os.kill(self.pid, signal.SIGUSR1)
                time.sleep(1.0)
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise AssertionError(f"the forked run did not end in {timeout:.0f}s; its stacks:\n"
                                     + Path(self.stacks).read_text())
            time.sleep(0.005)
        os.unlink(self.stacks)
        return self.returncode

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.wait()


def numba_cache_files() -> list[Path]:
    """The files of numba's cache beside fast.py for what fast.py compiles now, every use loaded (so
    compiled, or loaded from those very files) first."""
    from namegen import fast

    for use in fast.USES:
        fast.load(use)
    source = Path(fast.__file__).parent / "__pycache__"
    functions = [fast.train_names, *fast.PYTHON.values()]  # numba names its files after each one's first line
    return [f for function in functions for f in source.glob(f"fast.{function.__name__}-"
                                                             f"{function.__code__.co_firstlineno}.py*.nb[ic]")]


def copied_numba_cache(cache) -> bool:
    """Copy the numba cache of this checkout (see numba_cache_files) to where numba looks under
    NUMBA_CACHE_DIR=cache, which saves a cold compile (15-20 s); False if there is none to copy."""
    import shutil

    from namegen import fast

    files = numba_cache_files()
    try:
        from numba.core.caching import _CacheLocator

        target = cache / _CacheLocator.get_suitable_cache_subpath(fast.__file__)
    except (ImportError, AttributeError):
        return False
    if not all(any(f.name.startswith(f"fast.{name}-") for f in files) for name in ("train_names", "_tanh")):
        return False
    target.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, target / f.name)
    return True
