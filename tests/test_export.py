"""namegen export: the page, the ES module and the slim weights; the JavaScript sampler against
enumeration of a small model, its rules against Python's, and names from a hostile list kept as text."""

import json
import shutil
import subprocess
from collections import Counter
from itertools import product

import numpy as np
import pytest

from namegen.data import parse_names
from namegen.export import ExportConfig, export, exported
from namegen.model import softmax, step
from namegen.state import TrainConfig, new_state

from test_sampling import chi_square_bound

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (the JavaScript tests run under it)")


def node(module_path, script: str) -> str:
    """Run an ES module script under Node with the exported module imported as `model`."""
    code = f"import model, {{ NameModel }} from {json.dumps(str(module_path))};\n{script}"
    done = subprocess.run([NODE, "--input-type=module", "-e", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def tiny():
    """A model over three letters with random weights: every name up to 3 letters can be enumerated."""
    model = new_state(TrainConfig(hidden_size=5), parse_names("abc\ncab\nbca\nca", "abc.txt")).model
    model.params[:] = np.random.default_rng(3).standard_normal(model.params.size)
    return model


def enumerated(model, temperature=1.0, prefix=""):
    """Every name of at most 3 letters starting with `prefix`, with its probability under the model
    at `temperature`, renormalised over them (the sampler rejects longer ones)."""
    params, V = model.param_views, model.vocab.size
    probabilities = {}
    for length in range(1, 4):
        for ids in product(range(1, V), repeat=length):
            name = model.vocab.decode(ids)
            if not name.startswith(prefix):
                continue
            h, logits = step(params, np.zeros((1, params["Whh"].shape[0])), np.array([0]))
            p = 1.0
            for i, c in enumerate([*ids, 0]):
                if i >= len(prefix):  # the prefix is given, not drawn
                    p *= softmax(logits / temperature)[0, c]
                h, logits = step(params, h, np.array([c]))
            probabilities[name] = p
    total = sum(probabilities.values())
    return {name: p / total for name, p in probabilities.items()}


@needs_node
@pytest.mark.parametrize("options, temperature, prefix", [({}, 1.0, ""), ({"temperature": 0.7, "prefix": "b"}, 0.7, "b")])
def test_the_javascript_sampler_follows_the_model_by_enumeration(tiny, tmp_path, options, temperature, prefix):
    module = tmp_path / "tiny.js"
    export(tiny, ExportConfig(to="js", dtype="float64"), module)
    args = json.dumps({"count": 20000, "maxLength": 3, "seed": 7, "maxTries": 10**7, **options})
    names = node(module, f"console.log(model.sample({args}).join('\\n'));").split()
    wanted = enumerated(tiny, temperature, prefix)
    counts = Counter(names)
    assert len(names) == 20000 and set(counts) <= set(wanted)
    expected = np.array([20000 * wanted[name] for name in wanted])
    observed = np.array([counts[name] for name in wanted])
    shown = expected >= 5
    statistic = (((observed - expected) ** 2)[shown] / expected[shown]).sum()
    assert statistic < chi_square_bound(shown.sum() - 1), (statistic, shown.sum())


@pytest.fixture(scope="module")
def hostile_model():
    """Multi-word names with brackets and quotes, and one that is markup."""
    names = ["Hiril (Elf)", "Gandalf the Grey", "O'Neill", 'Grima "Wormtongue"', "Jean-Luc",
             "</script><script>alert(1)</script>", "Tom & Jerry"] * 6
    state = new_state(TrainConfig(hidden_size=16, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.02),
                      parse_names("\n".join(names), "middle.txt", "keep"))
    from namegen.training import train

    train(state, engine="numpy")
    return state.model


@needs_node
def test_the_javascript_names_break_no_rule_python_knows(hostile_model, tmp_path):
    module = tmp_path / "m.js"
    export(hostile_model, ExportConfig(to="js"), module)
    out = node(module, "console.log(JSON.stringify(model.sample({count: 400, seed: 2, unique: true})));")
    names = json.loads(out)
    assert len(names) == 400 and not [n for n in names if hostile_model.unlike_data(n)]
    rejected = json.loads(node(module, """
        const why = {};
        const rng = new (await import(%s)).Random(3);
        for (let i = 0; i < 3000; i++) {
          const name = model.drawName(rng, "", 40, 1, null, 1, 0, 1, []);
          const r = name === null ? "too_long" : model.unlikeData(name);
          if (r) why[r] = (why[r] || 0) + 1;
        }
        console.log(JSON.stringify(why));""" % json.dumps(str(module))))
    assert rejected.get("unbalanced", 0) + rejected.get("capital", 0) > 0  # there were draws to turn away


def test_a_page_holds_names_and_styles_as_text_never_markup(hostile_model, tmp_path):
    page = exported(hostile_model, ExportConfig(to="html"), title="<b>x</b>").decode()
    assert page.count("</script>") == 2  # the model's JSON block and the module: no name closes one
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    start = page.index('<script type="application/json" id="model">') + len('<script type="application/json" id="model">')
    data = json.loads(page[start : page.index("</script>", start)])
    assert "</script><script>alert(1)</script>" in data["names"] and "Tom & Jerry" in data["names"]
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: no address at all


@pytest.mark.parametrize("to", ["html", "js", "json", "npz"])
def test_an_export_is_the_same_bytes_each_time(hostile_model, to):
    assert exported(hostile_model, ExportConfig(to=to)) == exported(hostile_model, ExportConfig(to=to))


@pytest.mark.parametrize("dtype, tolerance", [("float64", 0.0), ("float32", 1e-7)])
def test_slim_weights_are_the_models_with_no_optimizer_state_paths_or_names(hostile_model, tmp_path, dtype, tolerance):
    path = tmp_path / "slim.npz"
    export(hostile_model, ExportConfig(to="npz", dtype=dtype), path)
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        meta = json.loads(npz["meta"].tobytes())
        for name, view in hostile_model.param_views.items():
            if f"params/{name}" in files:
                assert npz[f"params/{name}"].dtype == dtype
                np.testing.assert_allclose(npz[f"params/{name}"], view, rtol=tolerance, atol=tolerance)
    assert files == {"meta", "params/Wxh", "params/Whh", "params/bh", "params/Why", "params/by"}
    assert "names" not in meta and str(tmp_path) not in json.dumps(meta) and meta["rules"]["balanced"] == ["()", '""']
    with_names = json.loads(exported(hostile_model, ExportConfig(to="json", with_names=True)))
    assert with_names["names"] == sorted(set(hostile_model.names))


def test_the_cli_writes_each_format_and_never_replaces_a_checkpoint(cli, trained_checkpoint, tmp_path):
    for to in ("html", "js", "json", "npz"):
        out = tmp_path / f"dinos.{to}"
        result = cli("export", "-c", trained_checkpoint, "--to", to, "--out", out)
        assert result.code == 0 and out.stat().st_size > 1000 and "wrote" in result.stderr
    before = trained_checkpoint.read_bytes()
    cli("export", "-c", trained_checkpoint, "--to", "npz", "--out", trained_checkpoint).fails_in_one_line(
        1, "never replaces one")
    assert trained_checkpoint.read_bytes() == before
    cli("export", "-c", trained_checkpoint, "--out", tmp_path / "no" / "such" / "dir.html").fails_in_one_line(
        1, "cannot write")
    cli("export", "-c", trained_checkpoint, "--to", "pdf", "--out", tmp_path / "x").fails_in_one_line(2, "--to")


@needs_node
def test_a_model_of_two_lists_samples_each_style_in_javascript(two_letter_styles, tmp_path):
    module = tmp_path / "two.js"
    export(two_letter_styles, ExportConfig(to="js"), module)
    out = json.loads(node(module, "console.log(JSON.stringify([model.sample({count: 200, seed: 1, style: 'as'}),"
                                  " model.sample({count: 200, seed: 1, style: 'cs'})]));"))
    share_a = [sum(c in "ab" for c in "".join(names)) / len("".join(names)) for names in out]
    assert share_a[0] > 0.8 and share_a[1] < 0.2


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("float64", 1e-12)])
def test_the_onnx_step_gives_namegens_logits_over_a_thousand_steps_of_real_names(dtype, tolerance, tmp_path):
    """The shipped model's step in onnxruntime against namegen's own, name after name from h = 0,
    until 1,000 steps; a model of two lists in each style (its style term w B fed as the input)."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'namegen[export]')")
    from namegen.checkpoint import load_model
    from namegen.data import bundled_path

    model = load_model(bundled_path("checkpoints", "dinos.npz"))
    path = tmp_path / "dinos.onnx"
    export(model, ExportConfig(to="onnx", dtype=dtype), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["namegen"])
    assert meta["vocab"] == list(model.vocab.chars) and json.loads((tmp_path / "dinos.onnx.json").read_text()) == meta
    params, H, steps, worst = model.param_views, model.hidden_size, 0, 0.0
    for name in model.names:
        ids = [0, *model.vocab.encode(name, "a name").tolist()]
        h = np.zeros((1, H))
        h_onnx = np.zeros((1, H), dtype=dtype)
        for token in ids:
            h, logits = step(params, h, np.array([token]))
            out, h_onnx = session.run(["logits", "h_next"], {"token": np.array([token], dtype=np.int64), "h": h_onnx,
                                                             "style": np.zeros((1, H), dtype=dtype)})
            worst = max(worst, float(np.abs(out - logits).max() / (1 + np.abs(logits).max())))
            steps += 1
        if steps >= 1000:
            break
    assert worst < tolerance, worst


def test_onnx_takes_a_style_term(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'namegen[export]')")
    from namegen.data import NameList
    from namegen.model import blend_term

    data = NameList(["aab", "abb", "bba", "baa"] * 4, (), "two", styles=("x", "y"), style_of=np.repeat([0, 1], [8, 8]))
    model = new_state(TrainConfig(hidden_size=6, style_size=3), data).model
    model.params[:] = np.random.default_rng(5).standard_normal(model.params.size)
    path = tmp_path / "two.onnx"
    export(model, ExportConfig(to="onnx", dtype="float64"), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    params = model.param_views
    term = blend_term(params, np.array([0.3, 0.7]))
    h = np.random.default_rng(1).uniform(-1, 1, (4, 6))
    tokens = np.array([0, 1, 2, 1])
    expected_h, expected = step(params, h, tokens, term)
    logits, h_next = session.run(["logits", "h_next"], {"token": tokens, "h": h, "style": np.tile(term, (4, 1))})
    np.testing.assert_allclose(logits, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_next, expected_h, rtol=1e-12, atol=1e-12)
    meta = json.loads(session.get_modelmeta().custom_metadata_map["namegen"])
    assert meta["styles"]["names"] == ["x", "y"] and "B" in meta


@needs_node
def test_the_readmes_onnx_loop_runs_in_onnxruntime_web_under_node(tmp_path):
    """The JavaScript loop the README gives game developers, as printed there, on the shipped model.
    NAMEGEN_ONNXRUNTIME_WEB: a directory holding node_modules/onnxruntime-web (.ci/run makes one)."""
    import os
    from pathlib import Path

    from namegen.checkpoint import load_model
    from namegen.data import bundled_path

    pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'namegen[export]')")
    where = os.environ.get("NAMEGEN_ONNXRUNTIME_WEB")
    if not where or not (Path(where) / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("onnxruntime-web is not installed (npm install onnxruntime-web; NAMEGEN_ONNXRUNTIME_WEB=its directory)")
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    after = readme.index("**ONNX.**")
    start = readme.index("```javascript\n", after) + len("```javascript\n")
    loop = readme[start : readme.index("```", start)]
    work = Path(where) / f"test-{os.getpid()}-{tmp_path.name}"  # beside node_modules, so that imports resolve
    work.mkdir()
    try:
        model = load_model(bundled_path("checkpoints", "dinos.npz"))
        export(model, ExportConfig(to="onnx"), work / "dinos.onnx")
        (work / "loop.mjs").write_text(loop, encoding="utf-8")
        done = subprocess.run([NODE, "loop.mjs"], cwd=work, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(work)
    names = done.stdout.split()
    assert done.returncode == 0, done.stderr
    assert 1 <= len(names) <= 5 and all(n[0].isupper() and set(n[1:]) <= set(model.vocab.chars) for n in names)
