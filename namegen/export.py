"""Take a model out of Python: a slim JSON or npz of what sampling needs, an ES module that samples
in JavaScript, or one self-contained web page that does, offline.

An export holds the network (float32 by default), the vocabulary, how names are cleaned and shown,
the rules every line of the data keeps, and the styles; no optimizer state, no paths, and the
training names only when asked (a page always has them: its novel-only switch needs them). The
same checkpoint and options give the same bytes.
"""

from __future__ import annotations

import base64
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
FORMATS = ("html", "js", "json", "npz")
WEIGHTS = ("Wxh", "Whh", "bh", "Why", "by")  # and B, a model of several lists' style terms (K, H)


@dataclass(frozen=True)
class ExportConfig:
    """What `namegen export` writes; the CLI reads its options here."""

    to: str = option("html", "What to write: html (a page that generates names, offline), js (an ES module: the "
                             "sampler and the weights), json or npz (the weights, vocabulary and rules alone)",
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
            .replace("<!--TITLE-->", html_text(title))).encode("utf-8")


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


def web_file(name: str) -> str:
    return resources.files("namegen").joinpath("web", name).read_text(encoding="utf-8")


def html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


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
        atomic_write(out, content)
    except OSError as e:
        raise NamegenError(f"cannot write {out}: {e.strerror or e}") from None
    return len(content)
