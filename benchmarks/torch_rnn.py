"""The PyTorch side of `benchmarks/bench.py --torch`: namegen's network and recipe written the way a
PyTorch user would (nn.Embedding, nn.RNN, nn.Linear, torch.optim), for timing side by side. PyTorch
is never a dependency of namegen; this file only runs where it is installed.

Train, as `namegen train` would with the same options (the same split, the same initial weights,
the same batches in the same order: namegen's own data code picks them, outside the timed loop):
    python benchmarks/torch_rnn.py train --data data/dinos.txt --hidden-size 256 --embedding-size 256 \
        --dropout 0.5 --optimizer adam --learning-rate 0.003 --batch-size 16 --epochs 27 --warmup 0.05
Sample from a namegen checkpoint, all names at once as namegen does:
    python benchmarks/torch_rnn.py sample --checkpoint run.best.npz --count 100000
Either prints one JSON line: the seconds inside the loop, and (training) each epoch's validation loss.
Every epoch ends as namegen's does: the validation loss, then the model and optimizer saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Net(torch.nn.Module):
    """h_t = tanh(x_t Wxh + h_{t-1} Whh + bh), logits = dropout(h_t) Why + by; Wxh = E Wih with an
    embedding size (nn.Embedding then nn.RNN), else a one-hot input into nn.RNN."""

    def __init__(self, views: dict[str, np.ndarray], dropout: float, dtype: torch.dtype):
        super().__init__()
        H, V = views["Whh"].shape[0], views["Why"].shape[1]
        tensor = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
        self.embedding = None
        if "E" in views:
            self.embedding = torch.nn.Embedding(V, views["E"].shape[1], dtype=dtype)
            self.embedding.weight.data = tensor(views["E"])
            inputs, w_ih = views["E"].shape[1], views["Wih"]
        else:
            inputs, w_ih = V, views["Wxh"]
        self.rnn = torch.nn.RNN(inputs, H, nonlinearity="tanh", batch_first=True, dtype=dtype)
        self.rnn.weight_ih_l0.data, self.rnn.weight_hh_l0.data = tensor(w_ih.T), tensor(views["Whh"].T)
        self.rnn.bias_hh_l0.data = tensor(views["bh"])
        self.rnn.bias_ih_l0.data.zero_()
        self.rnn.bias_ih_l0.requires_grad_(False)  # one hidden bias, as namegen's bh
        self.out = torch.nn.Linear(H, V, dtype=dtype)
        self.out.weight.data, self.out.bias.data = tensor(views["Why"].T), tensor(views["by"])
        self.dropout, self.vocab = dropout, V

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = self.embedding(x) if self.embedding is not None else F.one_hot(x, self.vocab).to(self.out.weight.dtype)
        h, _ = self.rnn(inputs)
        return self.out(F.dropout(h, self.dropout, self.training))


def batch_tensors(model, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, targets and mask of the names at `indices`, padded (namegen's pad_batch)."""
    from namegen.data import pad_batch

    inputs, targets, mask = pad_batch([model.encoded.ids(i) for i in indices])
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


def summed_nll(net: Net, x, y, mask) -> torch.Tensor:
    logits = net(x)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
    return (nll * mask.reshape(-1)).sum()


def train(args) -> dict:
    from namegen.data import read_names
    from namegen.state import TrainConfig, new_state
    from namegen.training import epoch_order, learning_rate_at

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    config = TrainConfig(hidden_size=args.hidden_size, embedding_size=args.embedding_size, dropout=args.dropout,
                         optimizer=args.optimizer, learning_rate=args.learning_rate, batch_size=args.batch_size,
                         epochs=args.epochs, warmup=args.warmup, seed=args.seed)
    state = new_state(config, read_names(args.data))  # namegen's split, initial weights and batch order
    net = Net(state.layout.views(state.weights), args.dropout, dtype)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = (torch.optim.Adam(params, lr=args.learning_rate, eps=1e-8) if args.optimizer == "adam"
                 else torch.optim.SGD(params, lr=args.learning_rate))
    val = batch_tensors(state.model, state.val_idx)
    val_chars = int(val[2].sum())
    B = args.batch_size
    loop_seconds, val_losses = 0.0, []
    with tempfile.TemporaryDirectory() as out:
        for epoch in range(args.epochs):
            order = epoch_order(state, state.model.encoded.lengths)
            batches = [batch_tensors(state.model, order[i : i + B]) for i in range(0, len(order), B)]
            net.train()
            start = time.perf_counter()
            for k, (x, y, mask) in enumerate(batches):
                for group in optimizer.param_groups:
                    group["lr"] = float(learning_rate_at(config, epoch, k * B, len(order)))
                loss = summed_nll(net, x, y, mask) / x.shape[0]  # namegen's loss: the mean of each name's sum
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for p in params:
                    p.grad.clamp_(-5.0, 5.0)
                optimizer.step()
            loop_seconds += time.perf_counter() - start
            net.eval()
            with torch.no_grad():
                val_losses.append(float(summed_nll(net, *val)) / val_chars)
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1},
                       Path(out) / "latest.pt")
    return {"loop_seconds": loop_seconds, "val": val_losses, "best_val": min(val_losses)}


def sample(args) -> dict:
    """`count` names from a namegen checkpoint's weights, drawn as namegen draws them: every name at
    once, a row dropped when it ends, names of more than max_length letters dropped."""
    from namegen.checkpoint import load_model
    from namegen.sampling import default_max_length

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    model = load_model(args.checkpoint)
    views = {name: torch.tensor(np.ascontiguousarray(value), dtype=dtype) for name, value in model.param_views.items()}
    Wxh, Whh, bh, Why, by = (views[name] for name in ("Wxh", "Whh", "bh", "Why", "by"))
    max_length, chars = default_max_length(model), model.vocab.chars
    start = time.perf_counter()
    with torch.no_grad():
        n = args.count
        h = torch.zeros(n, Whh.shape[0], dtype=dtype)
        ids = torch.zeros(n, dtype=torch.long)
        rows = torch.arange(n)
        drawn = torch.zeros(n, max_length, dtype=torch.long)
        names, lengths = [], torch.zeros(n, dtype=torch.long)
        for length in range(max_length + 1):
            h = torch.tanh(Wxh[ids] + h @ Whh + bh)
            ids = torch.multinomial(torch.softmax(h @ Why + by, dim=1), 1, generator=generator).squeeze(1)
            ended = ids == 0
            lengths[rows[ended]] = length
            if length == max_length:
                break
            keep = ~ended
            rows, ids, h = rows[keep], ids[keep], h[keep]
            if not len(rows):
                break
            drawn[rows, length] = ids
        for row, length in enumerate(lengths.tolist()):
            if length:
                names.append("".join(chars[i - 1] for i in drawn[row, :length].tolist()))
    return {"loop_seconds": time.perf_counter() - start, "names": len(names), "first": names[:3]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train")
    t.add_argument("--data", default=None)
    t.add_argument("--hidden-size", type=int, default=50)
    t.add_argument("--embedding-size", type=int, default=0)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    t.add_argument("--learning-rate", type=float, default=0.01)
    t.add_argument("--batch-size", type=int, default=1)
    t.add_argument("--epochs", type=int, default=25)
    t.add_argument("--warmup", type=float, default=0.0)
    s = commands.add_parser("sample")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--count", type=int, default=100_000)
    for sub in (t, s):
        sub.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        sub.add_argument("--threads", type=int, default=1)
        sub.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(train(args) if args.command == "train" else sample(args)))


if __name__ == "__main__":
    main()
