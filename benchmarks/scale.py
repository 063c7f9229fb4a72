"""Loading and briefly training on a million names: time and memory.

Run from the repository root:  python benchmarks/scale.py [--names 1000000]
Generates random names of 3-12 letters, then measures reading and encoding them (peak traced
memory) and a `namegen train --max-steps 300` run in a subprocess (wall time, peak RSS).
"""

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from namegen.data import read_names
from namegen.vocab import Vocab


def write_names(path: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 13, size=count)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))[rng.integers(0, 26, size=lengths.sum())]
    path.write_text("\n".join("".join(c).capitalize() for c in np.split(letters, np.cumsum(lengths)[:-1])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "names.txt"
        write_names(path, args.names)
        size = path.stat().st_size
        print(f"{args.names:,} names, {size / 1e6:.1f} MB")
        start = time.perf_counter()
        data = read_names(path)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        encoded = Vocab.from_names(data.names).encode_names(data.names)
        encode_s = time.perf_counter() - start
        print(f"read and clean: {read_s:.2f}s; encode: {encode_s:.2f}s ({len(encoded.seq):,} ids)")
        del data, encoded
        tracemalloc.start()
        data = read_names(path)
        Vocab.from_names(data.names).encode_names(data.names)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak traced memory while reading and encoding: {peak / 1e6:.0f} MB ({peak / size:.1f}x the file)")
        command = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "namegen", "train", "--data", str(path),
                   "--max-steps", "300", "--out-dir", tmp, "--preview", "0"]
        result = subprocess.run(command, capture_output=True, text=True)
        wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
        print(f"namegen train --max-steps 300: {float(wall):.1f}s wall, peak RSS {int(rss_kb) / 1024:.0f} MB, "
              f"checkpoint {(Path(tmp) / 'names.latest.npz').stat().st_size / 1e6:.1f} MB")
        print(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
