"""namegen: a character-level vanilla RNN that learns a list of names and invents new ones.

The public API: every command of the CLI is a function here, and namegen.cli is a thin layer over them.
"""

__version__ = "0.1.0"

from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .data import NameList, parse_names, read_names
from .diagnostics import Demo, Diagnosis, Flow, FlowConfig, demo, diagnose, gradient_flow
from .errors import CheckpointError, DataError, NamegenError, OptionError, SamplingError, TrainingError
from .evaluation import Evaluation, Score, evaluate, evaluate_sets, score
from .gradcheck import GradcheckConfig, GradientCheck, check_gradients, gradient_check, random_model
from .model import Model, backward, forward, init_params, loss_and_grads, unflatten
from .plot import write_png
from .recent import default_checkpoint, record_run
from .sampling import SampleConfig, generate, sample
from .state import EpochRecord, TrainConfig, TrainState, new_state, resume_state
from .threads import blas_threads
from .training import Callbacks, Run, TrainResult, start_run, train
from .vocab import BOUNDARY, Encoded, Vocab

__all__ = [
    "BOUNDARY", "Callbacks", "CheckpointError", "DataError", "Demo", "Diagnosis", "Encoded", "EpochRecord",
    "Evaluation", "Flow", "FlowConfig", "GradcheckConfig", "GradientCheck", "Model", "NameList", "NamegenError",
    "OptionError", "Run", "SampleConfig", "SamplingError", "Score", "TrainConfig", "TrainResult", "TrainState",
    "TrainingError", "Vocab", "backward", "check_gradients", "default_checkpoint", "demo", "diagnose", "evaluate",
    "blas_threads", "evaluate_sets", "forward", "generate", "gradient_check", "gradient_flow", "init_params", "load_checkpoint",
    "load_model", "loss_and_grads", "new_state", "parse_names", "random_model", "read_names", "record_run", "resume_state",
    "sample", "save_checkpoint", "score", "start_run", "train", "unflatten", "write_png",
]
