"""Hostile inputs at full size, through the CLI: wall time, peak memory, exit code and message.

Run from the repository root:  python benchmarks/hostile.py   (the 4th case of round three mounts a tmpfs: as root)
Builds each input of the reliability review in a temporary directory (the decompression bombs are
real deflated archives of a few MB), runs the namegen command a user would run on it under
/usr/bin/time, and prints one row per case. Every case must end in bounded time and memory with a
one-line message or a useful result; the test suite checks the same behaviour on small inputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from namegen.checkpoint import save_checkpoint
from namegen.data import read_names
from namegen.state import EpochRecord, TrainConfig, new_state
from namegen.training import train

NAMEGEN = [sys.executable, "-m", "namegen"]


def run(label: str, args: list, stdin=None, shell: str | None = None, pick: str = "") -> None:
    """Run one command under /usr/bin/time and print its row: wall time, peak RSS, exit code, and
    its first line on stderr (or, with `pick`, its first line holding that text)."""
    timed = ["/usr/bin/time", "-f", "TIME %e %M"]
    command = [*timed, "sh", "-c", shell] if shell else [*timed, *NAMEGEN, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, stdin=stdin, timeout=600)
    lines = result.stderr.strip().splitlines()
    wall, rss = next(line for line in reversed(lines) if line.startswith("TIME")).split()[1:]
    said = next((line for line in lines if not line.startswith(("TIME", "Command exited"))), result.stdout.strip()[:60])
    if pick:
        said = next((line for line in result.stdout.splitlines() + lines if pick in line), said)
    print(f"{label:46s} {float(wall):6.2f} s {int(rss) / 1024:7.0f} MB  exit {result.returncode:3d}  {said[:110]}")


def bombs(work: Path, good: Path) -> None:
    entries = {}
    with zipfile.ZipFile(good) as z:
        for info in z.infolist():
            entries[info.filename] = z.read(info)

    def archive(name: str, extra: dict) -> Path:
        path = work / name
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for entry, content in (entries | extra).items():
                if callable(content):
                    with z.open(entry, "w", force_zip64=True) as f:
                        content(f)
                else:
                    z.writestr(entry, content)
        return path

    def zeros_array(f):  # a 20000 x 20000 float64 array of zeros, written as an .npy stream
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (20000, 20000)})
        chunk = bytes(2**24)
        for _ in range(20000 * 20000 * 8 // len(chunk)):
            f.write(chunk)

    def spaces(size):
        def write(f):
            chunk = b" " * 2**24
            for _ in range(size // len(chunk)):
                f.write(chunk)
        return write

    meta = entries["meta.npy"][128:]
    padded_meta = len(meta) + 1_200_000_000

    def meta_and_whitespace(f):
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (padded_meta,)})
        f.write(meta)
        spaces(1_200_000_000)(f)

    for label, name, extra in [
        ("1 params/Whh a deflated 20000x20000 array", "whh.npz", {"params/Whh.npy": zeros_array}),
        ("1 an unknown 1.15 GB entry", "unknown.npz", {"junk.npy": spaces(1_150_000_000)}),
        ("1 meta followed by 1.2 GB of whitespace", "meta.npz", {"meta.npy": meta_and_whitespace}),
    ]:
        path = archive(name, extra)
        run(f"{label} ({path.stat().st_size / 1e6:.1f} MB file)", ["info", path])


def hostile_meta(work: Path, good: Path) -> None:
    with zipfile.ZipFile(good) as z:
        arrays = {info.filename: z.read(info) for info in z.infolist()}
    meta = json.loads(arrays["meta.npy"][128:])

    def with_meta(name: str, text: str) -> Path:
        raw = text.encode()
        buffer = Path(work / "meta.tmp")
        np.save(buffer, np.frombuffer(raw, dtype=np.uint8))
        path = work / name
        with zipfile.ZipFile(path, "w") as z:
            for entry, content in arrays.items():
                z.writestr(entry, buffer.with_suffix(".tmp.npy").read_bytes() if entry == "meta.npy" else content)
        return path

    nested = json.dumps(meta)[:-1] + ', "x": ' + "[" * 1_000_000 + "]" * 1_000_000 + "}"
    run("7 metadata nested 1,000,000 deep", ["info", with_meta("nested.npz", nested)])
    run("7 epoch 1e999", ["info", with_meta("epoch.npz", json.dumps(meta | {"epoch": 1e999}))])


def round_three(work: Path, good: Path) -> None:
    """The cases of the third reliability review (issue 19), numbered as there."""
    tiny = work / "tiny.txt"
    tiny.write_text("\n".join(read_names().names[::60]))
    small = ["--epochs", "1", "--hidden-size", "8", "--preview", "0", "--engine", "numpy"]

    out = work / "r3-lock"
    out.mkdir()
    (work / "victim.txt").write_text("the user's words\n")
    (out / "tiny.lock").symlink_to(work / "victim.txt")
    run("1 a symlink where the lock goes", ["train", "--data", tiny, "--out-dir", out, *small])
    (out / "tiny~tuned.lock").symlink_to(work / "victim.txt")
    run("1 the same for tune's lock", ["tune", "--data", tiny, "--out-dir", out, "--budget", "2s"])
    print(f"{'':46s} victim.txt still holds: {(work / 'victim.txt').read_text().strip()!r}")

    tuned = work / "r3-tune"
    subprocess.run([*NAMEGEN, "tune", "--data", tiny, "--budget", "10s", "--out-dir", tuned], capture_output=True)
    run("2 tune --budget 1s over a better tuned model", ["tune", "--data", tiny, "--budget", "1s", "--out-dir", tuned],
        pick="in place:")

    run("3 resume with full batch and lr 1e308", ["train", "--resume", good, "--batch-size", "0", "--learning-rate",
                                                 "1e308", "--epochs", "3", "--preview", "0"])

    full = work / "r3-full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(full)], capture_output=True)
    if mounted.returncode == 0:
        try:
            run("4 tune on a 3 MB file system", ["tune", "--data", tiny, "--budget", "20s", "--out-dir", full],
                pick="saved")
            print(f"{'':46s} kept: {sorted(p.name for p in full.iterdir())}")
        finally:
            subprocess.run(["umount", str(full)])
    else:
        print(f"{'4 tune on a 3 MB file system':46s} skipped: cannot mount a tmpfs here ({mounted.stderr.strip()[:60]})")

    run("6 --weight-decay 2 --learning-rate 1", ["train", "--weight-decay", "2", "--learning-rate", "1", "--out-dir", work])

    state = work / "r3-state"
    (state / "namegen").mkdir(parents=True)
    with open(state / "namegen" / "runs.json", "w") as f:
        f.write('{"runs": {"/x": [{"checkpoint": "/x/a.latest.npz", "started": "2024-01-01"}]}, "pad": "')
        chunk = "x" * 2**24
        for _ in range(64):  # 1 GiB
            f.write(chunk)
        f.write('"}')
    run("7 sample beside a 1 GB registry", [], shell=f"XDG_STATE_HOME={state} {' '.join(NAMEGEN)} sample -n 3")
    (state / "namegen" / "runs.json").unlink()
    started = time.perf_counter()
    procs = []
    for k in range(16):
        directory = work / f"r3-many-{k}"
        directory.mkdir()
        procs.append(subprocess.Popen([*NAMEGEN, "train", "--data", tiny, *small], cwd=directory,
                                      env={**os.environ, "XDG_STATE_HOME": str(state)}, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    for proc in procs:
        proc.wait()
    recorded = json.loads((state / "namegen" / "runs.json").read_text())["runs"]
    print(f"{'7 16 trains at once in 16 directories':46s} {time.perf_counter() - started:6.2f} s {'':10s} "
          f"{sum(str(work / f'r3-many-{k}') in recorded for k in range(16))} of 16 recorded (large by design: 16 runs)")

    cache = work / "r3-numba"
    subprocess.run([*NAMEGEN, "train", "--data", tiny, "--out-dir", work / "r3-n1", "--epochs", "1", "--preview", "0"],
                   capture_output=True, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})
    for nbc in cache.rglob("*.nbc"):
        nbc.write_bytes(nbc.read_bytes()[:100])
    run("8 a truncated numba cache (compiles: large)", [], shell=f"NUMBA_CACHE_DIR={cache} {' '.join(NAMEGEN)} train "
        f"--data {tiny} --out-dir {work / 'r3-n2'} --epochs 1 --preview 0")

    long = work / ("n" * 246 + ".txt")
    long.write_text(tiny.read_text())
    run("9 a data file with a 246-byte name", ["train", "--data", long, "--out-dir", work / "r3-long", *small],
        pick="saved")
    lists = []
    for k in range(64):
        path = work / "r3-lists" / f"list-{k:02d}-{'x' * 40}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(tiny.read_text())
        lists += ["--data", path]
    run("9 64 lists joined into one run name", ["train", *lists, "--out-dir", work / "r3-64", *small], pick="saved")

    (work / "r3-scratch").mkdir()
    (work / "r3-scratch" / ".tiny~tuned.999999999.abc.trials").symlink_to(work)
    run("10 a symlink named like tune's scratch", ["tune", "--data", tiny, "--budget", "1s", "--out-dir",
                                                   work / "r3-scratch"], pick="saved")

    styled = work / "r3-styles"
    subprocess.run([*NAMEGEN, "train", "--data", tiny, "--data", good.parent / "names-b.txt", "--out-dir", styled,
                    *small], capture_output=True)
    styled_ckpt = next(styled.glob("*.latest.npz"))
    run("11 --style 'tiny=1e308,tiny=1e308'", ["sample", "-c", styled_ckpt, "--style", "tiny=1e308,tiny=1e308", "-n", "3"],
        pick="")

    from namegen.model import unflatten
    from namegen.checkpoint import load_checkpoint
    hostile = load_checkpoint(good)
    unflatten(hostile.model.params, hostile.model.vocab.size, hostile.model.hidden_size)["Why"][:] = 1e308
    save_checkpoint(work / "r3-why.npz", hostile)
    run("12 a finite Why of 1e308", ["sample", "-c", work / "r3-why.npz"])

    marked = work / "m" / "[" / "x].npz"
    marked.parent.mkdir(parents=True)
    marked.write_bytes(good.read_bytes())
    run("13 score with a checkpoint path m/[/x].npz", ["score", "abc", "-c", marked], pick="score (")
    evil = work / "evil\x1b[2J.txt"
    evil.write_text(tiny.read_text())
    run("14 train on a file whose name holds ESC", ["train", "--data", evil, "--out-dir", work / "r3-evil", *small],
        pick="sample from it")

    few = work / "twenty.txt"
    few.write_text("\n".join(read_names().names[:20]))
    run("15 tune --budget 30s on a 20-name list", ["tune", "--data", few, "--budget", "30s", "--out-dir", work / "r3-20"],
        pick="tune: ")
    print(f"{'':46s} files left: {sum(1 for _ in (work / 'r3-20').rglob('*'))}")

    many = ["--data", work / "none.txt"] * 40_000
    run("16 train with 40,000 --data", ["train", *many])
    run("17 sample with a 130 KB --style", ["sample", "-c", styled_ckpt, "--style", "x" * 130_000])
    run("17 tune with a 130 KB --budget", ["tune", "--budget", "9" * 130_000])

    wide = work / "r3-wide"
    subprocess.run([*NAMEGEN, "train", "--hidden-size", "256", "--embedding-size", "256", "--dropout", "0.5",
                    "--optimizer", "adam", "--learning-rate", "0.003", "--batch-size", "16", "--epochs", "8",
                    "--warmup", "0.05", "--preview", "0", "--out-dir", wide], capture_output=True)
    run("18 gradcheck on a hidden-256 model (large)", ["gradcheck", "-c", wide / "dinos.best.npz"], pick="Wxh")
    run("19 sample -n 100000 | head -1", [], shell=f"{' '.join(NAMEGEN)} sample -c {good} -n 100000 | head -1")
    run("20 score a name with letters never seen", ["score", "-c", good, "Stegosaurus", "Zzk9x"], pick="never saw")
    run("21 diagnose --demo counting --activation sigmoid", ["diagnose", "--demo", "counting", "--activation", "sigmoid"])
    utf16 = work / "utf16.txt"
    utf16.write_bytes("Rex\nZuul\n".encode("utf-16"))
    run("22 a UTF-16 names file", ["train", "--data", utf16, "--out-dir", work])


def main() -> None:
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; CPython {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        state = new_state(TrainConfig(hidden_size=50, epochs=1), read_names())
        train(state, work / "good.latest.npz")
        good = work / "good.latest.npz"
        (work / "names-b.txt").write_text("\n".join(read_names().names[1::60]))
        round_three(work, good)
        bombs(work, good)
        hostile_meta(work, good)

        # 2: resuming a best checkpoint whose latest is further along
        worse = new_state(TrainConfig(hidden_size=8, epochs=1), read_names())
        train(worse, work / "x.latest.npz")
        subprocess.run([*NAMEGEN, "train", "--resume", work / "x.latest.npz", "--epochs", "2", "--learning-rate", "5",
                        "--lr-schedule", "constant", "--preview", "0"], capture_output=True)
        run("2 train --resume x.best.npz (latest further)", ["train", "--resume", work / "x.best.npz", "--epochs", "3"])

        # 3, 4: a signal during training: from the signal to the exit
        for signum in (signal.SIGTERM, signal.SIGHUP):
            proc = subprocess.Popen([*NAMEGEN, "train", "--out-dir", work / f"sig{signum}", "--preview", "0"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(3)
            sent = time.perf_counter()
            proc.send_signal(signum)
            _, err = proc.communicate()
            print(f"{'3 ' + signal.Signals(signum).name + ' during training':46s} {time.perf_counter() - sent:6.2f} s "
                  f"{'':10s} exit {proc.returncode:3d}  {err.strip().splitlines()[-1][:110]}")

        # 5: endless or oversized names files
        run("5 train --data /dev/zero", ["train", "--data", "/dev/zero", "--out-dir", work])
        run("5 train --data /dev/urandom", ["train", "--data", "/dev/urandom", "--out-dir", work])
        run("5 an endless stream of valid names", [], shell=f"yes Tyrannosaurus | {' '.join(NAMEGEN)} train "
                                                           f"--data /dev/stdin --out-dir {work}")

        # 6: a second run on the same files
        first = subprocess.Popen([*NAMEGEN, "train", "--out-dir", work / "busy", "--epochs", "1000", "--preview", "0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        run("6 a second run on the same out-dir", ["train", "--out-dir", work / "busy"])
        first.kill()
        first.wait()

        # 8: a model trained at lr 1e200
        diverged = new_state(TrainConfig(hidden_size=50, epochs=2, learning_rate=1e200), read_names())
        train(diverged, work / "diverged.latest.npz")
        run("8 evaluate --json, a model trained at lr 1e200", ["evaluate", "-c", work / "diverged.latest.npz", "--json"])
        run("8 score --json, the same", ["score", "-c", work / "diverged.latest.npz", "Rex", "--json"])

        # 9: diagnostics on long names
        for letters in (1000, 60_000):
            run(f"9 diagnose a {letters:,}-letter name", ["diagnose", "-c", good, ("stegosaurus" * 6000)[:letters]])

        # 10, 11: sampling
        run("10 sample --temperature 1e-310 --min-length 30", ["sample", "-c", good, "--temperature", "1e-310",
                                                                "--min-length", "30", "-n", "5", "--seed", "1"])
        run("11 sample -n 100000000 (first 100,000 names)", [], shell=f"{' '.join(NAMEGEN)} sample -c {good} "
                                                                       "-n 100000000 | head -n 100000 > /dev/null")
        run("11 train --preview 100000000", ["train", "--preview", "100000000", "--out-dir", work])
        run("11 sample --max-length 10**30", ["sample", "-c", good, "--max-length", str(10**30)])

        # 15: a FIFO, and a long history
        os.mkfifo(work / "fifo.npz")
        run("15 info on a FIFO", ["info", work / "fifo.npz"])
        long = new_state(TrainConfig(hidden_size=50, epochs=20_000), read_names())
        record = EpochRecord(1, 10, 3.0, 3.1, 3.0, 1.0, 2.0, 0.0, 1.0, 0.1)
        long.history = [EpochRecord(**{**record.__dict__, "epoch": i + 1}) for i in range(20_000)]
        long.epoch = 20_000
        save_checkpoint(work / "long.npz", long)
        run("15 info on a 20,000-epoch history", ["info", work / "long.npz"])
        run("15 plot on a 20,000-epoch history", ["plot", "-c", work / "long.npz"])


if __name__ == "__main__":
    main()
