"""Names per second outside Python, against `namegen sample` on the same model: the exported ES
module under Node.js, an ONNX step driven by onnxruntime, and the page's time to its first names in
headless Chromium; and the size of each export.

    python benchmarks/export.py [--checkpoint CKPT] [--count 2000]

By default the shipped model; pass a hidden-256 checkpoint to see the sizes and speeds of a larger one.
Each figure is the best of --repeats runs. Node, onnxruntime and Chromium are optional: a missing one
is skipped with a line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from namegen.checkpoint import load_model  # noqa: E402
from namegen.data import bundled_path  # noqa: E402
from namegen.export import ExportConfig, export  # noqa: E402
from namegen.sampling import SampleConfig, default_max_length, sample  # noqa: E402


def best(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def node_rate(module: Path, count: int, repeats: int) -> float | None:
    """Names per second of model.sample in Node, the module loaded once (timed inside Node)."""
    if not shutil.which("node"):
        print("  node: not installed, skipped")
        return None
    code = (f"import model from {json.dumps(str(module))};\nlet best = Infinity;\n"
            f"for (let r = 0; r < {repeats}; r++) {{ const t = performance.now(); "
            f"model.sample({{count: {count}, seed: r}}); best = Math.min(best, performance.now() - t); }}\n"
            "console.log(best / 1000);")
    seconds = float(subprocess.run(["node", "--input-type=module", "-e", code], capture_output=True, text=True,
                                   check=True).stdout)
    return count / seconds


def onnx_rate(path: Path, model, count: int, repeats: int) -> float | None:
    """Names per second of a plain sampling loop around the ONNX step in onnxruntime: every name at
    once, rows dropped as they end (the loop a game would write, batched)."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("  onnxruntime: not installed, skipped")
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    H, longest = model.hidden_size, default_max_length(model)

    def run():
        rng = np.random.default_rng(0)
        h = np.zeros((count, H), dtype=np.float32)
        tokens = np.zeros(count, dtype=np.int64)
        style = np.zeros((count, H), dtype=np.float32)
        done = 0
        for _ in range(longest + 1):
            logits, h = session.run(["logits", "h_next"], {"token": tokens, "h": h, "style": style[: len(h)]})
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            tokens = (cdf < rng.random((len(h), 1)) * cdf[:, -1:]).sum(axis=1).astype(np.int64)
            going = tokens != 0
            done += int((~going).sum())
            h, tokens = h[going], tokens[going]
            if not len(h):
                break

    return count / best(run, repeats)


def page_first_names(page: Path) -> float | None:
    """Seconds from opening the page (a file, offline) to its first names, in headless Chromium."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("  chromium or playwright: not installed, skipped")
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        context = browser.new_context(offline=True)
        times = []
        for _ in range(3):
            tab = context.new_page()
            start = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_selector("#names li")
            times.append(time.perf_counter() - start)
            tab.close()
        browser.close()
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=bundled_path("checkpoints", "dinos.npz"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    print(f"{args.checkpoint}: hidden {model.hidden_size}, {len(model.names)} names; {args.count:,} names a run, "
          f"best of {args.repeats}")
    with tempfile.TemporaryDirectory() as out:
        paths = {}
        for to in ("html", "js", "json", "npz", "onnx"):
            paths[to] = Path(out) / f"model.{to}"
            try:
                export(model, ExportConfig(to=to), paths[to])
                print(f"  --to {to:5s} {paths[to].stat().st_size:>10,} bytes")
            except Exception as e:  # onnx without the onnx package: say so and go on
                print(f"  --to {to:5s} not written: {e}")
        rates = {"namegen sample (in process)": args.count / best(
            lambda: sample(model, SampleConfig(count=args.count, seed=0)), args.repeats)}
        rates["JavaScript module in Node"] = node_rate(paths["js"], args.count, args.repeats)
        if paths["onnx"].exists():
            rates["ONNX step in onnxruntime"] = onnx_rate(paths["onnx"], model, args.count, args.repeats)
        for way, rate in rates.items():
            if rate is not None:
                print(f"  {way:30s} {rate:10,.0f} names/s")
        first = page_first_names(paths["html"])
        if first is not None:
            print(f"  page: first names {first:.2f}s after opening it in headless Chromium (the browser started)")


if __name__ == "__main__":
    main()
