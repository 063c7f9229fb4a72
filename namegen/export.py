"""Take a model out of Python: a slim JSON or npz of what sampling needs, an ES module that samples
in JavaScript, or one self-contained web page that does, offline.

An export holds the network (float32 by default), the vocabulary, how names are cleaned and shown,
the rules every line of the data keeps, and the styles; no optimizer state, no paths, and the
training names only when asked (a page always has them: its novel-only switch needs them). The
same checkpoint and options give the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import json
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import NamegenError
from .files import atomic_write
from .model import Model
from .options import check, option
from .sampling import default_max_length

FORMAT, VERSION = "namegen-export", 1
FORMATS = ("html", "js", "json", "npz", "onnx")
WEIGHTS = ("Wxh", "Whh", "bh", "Why", "by")  # and B, a model of several lists' style terms (K, H)


@dataclass(frozen=True)
class ExportConfig:
    """What `namegen export` writes; the CLI reads its options here."""

    to: str = option("html", "What to write: html (a page that generates names, offline), js (an ES module: the "
                             "sampler and the weights), json or npz (the weights, vocabulary and rules alone), onnx "
                             "(one step of the network, for onnxruntime; the rest in its metadata and beside it, "
                             "OUT.json; needs pip install 'namegen[export]')",
                     choices=FORMATS)
    dtype: str = option("float32", "Number format of the weights written: float32 (half the size) or float64 "
                                   "(the checkpoint's own numbers)", choices=("float32", "float64"))
    with_names: bool = option(False, "Include the training names (for novel-only names); a page always has them")

    def __post_init__(self):
        check(self)


def exported(model: Model, config: ExportConfig, title: str = "namegen") -> bytes:
    """The file `config` asks for, as bytes."""
    data = export_data(model, config.dtype, config.with_names or config.to == "html")
    if config.to == "npz":
        return npz_bytes(model, data, config.dtype)
    if config.to == "onnx":
        return onnx_bytes(model, data, config.dtype)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if config.to == "json":
        return text.encode("utf-8")
    # In a page or a module the JSON is code: "<", ">" and "&" escaped (valid JSON escapes, since
    # they only occur inside strings), so that a name "</script>" stays text, never markup.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")  # line ends to older JavaScript
    sampler = web_file("sampler.js")
    if config.to == "js":
        return (f"{sampler}\nexport const data = {text};\nconst model = new NameModel(data);\nexport default model;\n"
                ).encode("utf-8")
    page = web_file("page.html")
    return (page.replace("/*SAMPLER*/", sampler).replace("/*MODEL*/", text)
            .replace("<!--TITLE-->", html.escape(title))).encode("utf-8")


def export_data(model: Model, dtype: str, with_names: bool) -> dict:
    """Everything sampling needs, as JSON values; weights as base64 of little-endian `dtype` bytes."""
    views = model.param_views

    def array(name: str) -> dict:
        values = np.ascontiguousarray(views[name], dtype=np.dtype(dtype).newbyteorder("<"))
        return {"shape": list(values.shape), "data": base64.b64encode(values.tobytes()).decode("ascii")}

    data = {
        "format": FORMAT, "version": VERSION, "dtype": dtype, "boundary": 0,
        "vocab": list(model.vocab.chars), "hidden_size": model.hidden_size,
        "case": model.case, "capitals": list(model.capitals), "rules": model.rules.to_json(),
        "max_length": default_max_length(model),
        "styles": {"names": list(model.styles),
                   "shares": [round(float(x), 12) for x in model.style_shares] if model.styles else []},
        "weights": {name: array(name) for name in WEIGHTS + (("B",) if model.styles else ())},
    }
    if with_names:
        data["names"] = sorted(set(model.names))
    return data


def npz_bytes(model: Model, data: dict, dtype: str) -> bytes:
    """The npz: each weight an array (params/Wxh ...), the rest as JSON in "meta"; written with fixed
    dates, so that the same model gives the same bytes."""
    views = model.param_views
    arrays = {f"params/{name}": np.asarray(views[name], dtype=dtype) for name in data["weights"]}
    meta = {key: value for key, value in data.items() if key != "weights"}
    arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for name, values in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, values, allow_pickle=False)
            z.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()


def onnx_bytes(model: Model, data: dict, dtype: str) -> bytes:
    """One step of the network as an ONNX graph, for onnxruntime in C#, C++, Java or JavaScript:
    inputs token (N,) int64, h (N, H) and style (N, H), the style term (zeros for a model of one
    list; for style weights w, w B, with B in the metadata); outputs h_next = tanh(Wxh[token] +
    h Whh + bh + style) and logits = h_next Why + by. The export's JSON without the weights (and B
    as its own base64) is in the model's metadata under "namegen"."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise NamegenError("--to onnx needs the onnx package: pip install 'namegen[export]'") from None
    views = model.param_views
    H, V = model.hidden_size, model.vocab.size
    kind = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    weights = [numpy_helper.from_array(np.asarray(views[name], dtype=dtype), name) for name in WEIGHTS]
    nodes = [
        helper.make_node("Gather", ["Wxh", "token"], ["input"], axis=0),  # (N, H): Wxh's row of each token
        helper.make_node("MatMul", ["h", "Whh"], ["recurrent"]),
        helper.make_node("Add", ["input", "recurrent"], ["a1"]),
        helper.make_node("Add", ["a1", "bh"], ["a2"]),
        helper.make_node("Add", ["a2", "style"], ["a3"]),
        helper.make_node("Tanh", ["a3"], ["h_next"]),
        helper.make_node("MatMul", ["h_next", "Why"], ["z"]),
        helper.make_node("Add", ["z", "by"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "namegen_step",
        [helper.make_tensor_value_info("token", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("h", kind, ["N", H]), helper.make_tensor_value_info("style", kind, ["N", H])],
        [helper.make_tensor_value_info("logits", kind, ["N", V]), helper.make_tensor_value_info("h_next", kind, ["N", H])],
        weights)
    onnx_model = helper.make_model(graph, producer_name="namegen", opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8  # what onnxruntime 1.14 and newer read
    meta = {key: value for key, value in data.items() if key != "weights"}
    if model.styles:
        meta["B"] = data["weights"]["B"]
    helper.set_model_props(onnx_model, {"namegen": json.dumps(meta, ensure_ascii=False, separators=(",", ":"))})
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


def web_file(name: str) -> str:
    return resources.files("namegen").joinpath("web", name).read_text(encoding="utf-8")


def onnx_metadata(content: bytes) -> str:
    import onnx

    return {p.key: p.value for p in onnx.load_from_string(content).metadata_props}["namegen"]


def refuse_to_overwrite_a_checkpoint(out: str | Path, checkpoint: str | Path) -> None:
    """An export never replaces a trained model: not the checkpoint it is made from, nor any other."""
    out = Path(out)
    if out.is_dir():
        raise NamegenError(f"{out} is a directory; give --out a file name, such as {out / 'names.html'}")
    if not out.exists():
        return
    same = False
    try:
        same = out.samefile(checkpoint)
        with zipfile.ZipFile(out) as z:
            same = same or "split/train.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        pass  # not a zip, or unreadable: not a checkpoint
    if same:
        raise NamegenError(f"{out} is a namegen checkpoint; an export never replaces one: choose another --out")


def export(model: Model, config: ExportConfig, out: str | Path, title: str = "namegen") -> int:
    """Write the export to `out` atomically (the old file or the new one, never half of one); its size."""
    content = exported(model, config, title)
    try:
        if config.to == "onnx":  # and beside it, what a sampling loop needs besides the step
            meta = json.loads(onnx_metadata(content))
            atomic_write(f"{out}.json", json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
        atomic_write(out, content)
    except OSError as e:
        raise NamegenError(f"cannot write {out}: {e.strerror or e}") from None
    return len(content)
