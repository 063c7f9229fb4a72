"""namegen: a character-level vanilla RNN that learns a list of names and invents new ones.

The public API; the CLI (namegen.cli) is a thin layer over these functions.
"""

__version__ = "0.1.0"

from .checkpoint import load_checkpoint, save_checkpoint
from .data import NameList, parse_names, read_names
from .errors import CheckpointError, DataError, NamegenError, SamplingError, TrainingError
from .gradcheck import check_gradients
from .model import backward, forward, init_params, loss_and_grads, unflatten
from .sample import SampleConfig, generate, sample
from .state import TrainConfig, TrainState, new_state, resume_state
from .train import Callbacks, evaluate, train
from .vocab import BOUNDARY, Vocab

__all__ = [
    "BOUNDARY", "Callbacks", "CheckpointError", "DataError", "NameList", "NamegenError", "SampleConfig",
    "SamplingError", "TrainConfig", "TrainState", "TrainingError", "Vocab", "backward", "check_gradients",
    "evaluate", "forward", "generate", "init_params", "load_checkpoint", "loss_and_grads", "new_state",
    "parse_names", "read_names", "resume_state", "sample", "save_checkpoint", "train", "unflatten",
]
