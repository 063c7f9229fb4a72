"""namegen: a character-level vanilla RNN that learns a list of names and invents new ones.

The public API: every command of the CLI is a function here, and namegen.cli is a thin layer over them.
Its names are imported on first use (PEP 562), so that `import namegen.entry` loads no numpy: the
command catches Ctrl-C during start-up before anything heavy is imported.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "checkpoint": ("load_checkpoint", "load_model", "save_checkpoint"),
    "data": ("NameList", "parse_names", "read_names"),
    "diagnostics": ("Demo", "Diagnosis", "Flow", "FlowConfig", "demo", "diagnose", "gradient_flow"),
    "errors": ("CheckpointError", "DataError", "NamegenError", "OptionError", "SamplingError", "TrainingError"),
    "evaluation": ("Evaluation", "Score", "drawn_nll", "evaluate", "evaluate_sets", "score"),
    "layout": ("Layout",),
    "likeliest": ("Likely", "most_likely"),
    "rules": ("Rejection", "Rules"),
    "similar": ("similar",),
    "gradcheck": ("GradcheckConfig", "GradientCheck", "check_gradients", "gradient_check", "random_model"),
    "model": ("Model", "backward", "forward", "init_params", "loss_and_grads", "unflatten"),
    "plot": ("write_png",),
    "recent": ("default_checkpoint", "record_run"),
    "sampling": ("Drawn", "SampleConfig", "generate", "sample", "sampled", "stream"),
    "state": ("EpochRecord", "TrainConfig", "TrainState", "new_state", "resume_state"),
    "threads": ("blas_threads",),
    "training": ("Callbacks", "Run", "StopReason", "TrainResult", "start_run", "train"),
    "vocab": ("BOUNDARY", "Encoded", "Vocab"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'namegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # once looked up, a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
