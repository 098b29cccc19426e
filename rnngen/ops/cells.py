"""The recurrent cells the ops run, each one step and its backward in plain PyTorch.

Every cell is PyTorch's own, with its exact gate order and bias layout, so state_dicts move
between nn.GRU / nn.LSTM / nn.RNN and rnngen's modules both ways. For an input x and state h
(and, for the LSTM, the cell state c), with gi = W_ih x + b_ih and gh = W_hh h + b_hh, both
[gates * H]:

    gru       r, z = sigmoid(gi_r + gh_r), sigmoid(gi_z + gh_z)        (3 gate blocks: r | z | n)
              n = tanh(gi_n + r * gh_n)          h' = (1 - z) * n + z * h
    lstm      i, f, o = sigmoid(gi_i + gh_i), sigmoid(...f), sigmoid(...o)   (4 blocks: i | f | g | o)
              g = tanh(gi_g + gh_g)              c' = f * c + i * g        h' = o * tanh(c')
    rnn_tanh  h' = tanh(gi + gh)                                            (1 block)
    rnn_relu  h' = relu(gi + gh)

A cell is described once here (gate count, whether it has a cell state, its step and the step's
backward); the ops, the reference kernels and the modules take it by name. The fused backends
spell the same step in their own language beside their GRU (csrc/cpu/cells.h). A new cell is a
new entry here plus, in each backend that gets it, its step; a backend without a cell's kernels
leaves that cell to the reference (rnngen.dispatch.resolve says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import gru_cell


@dataclass(frozen=True)
class Cell:
    name: str
    gates: int             # gate blocks of H rows in W_ih, W_hh, b_ih, b_hh
    has_cell_state: bool   # a second state c beside h (LSTM)
    torch_module: str      # the nn module whose parameters and outputs it matches

    def step(self, gi, gh, h, c=None):
        """(h', c') from the input gates gi, hidden gates gh (both [B, gates * H]) and the state;
        c' is None for a cell without a cell state."""
        if self.name == "gru":
            _, z, n, _ = gru_cell.gates(gi, gh)
            return (1 - z) * n + z * h, None
        if self.name == "lstm":
            i, f, g, o = _lstm_gates(gi + gh)
            c = f * c + i * g
            return o * torch.tanh(c), c
        a = gi + gh
        return (torch.tanh(a) if self.name == "rnn_tanh" else torch.relu(a)), None

    def step_backward(self, dh, dc, gi, gh, h_prev, c_prev, h_new, c_new):
        """Backpropagate through one step: dh = dL/dh', dc = dL/dc' (LSTM; None otherwise).

        Returns (dgi, dgh, dh_direct, dc_prev): the gradients of the input and hidden gates (each
        [B, gates * H]), the part of dL/dh that does not pass through W_hh (the caller adds
        ``dgh @ W_hh``), and dL/dc (LSTM; None otherwise)."""
        if self.name == "gru":
            r, z, n, gh_n = gru_cell.gates(gi, gh)
            dgi, dgh, direct = gru_cell.step_backward(dh, r, z, n, gh_n, h_prev)
            return dgi, dgh, direct, None
        if self.name == "lstm":
            i, f, g, o = _lstm_gates(gi + gh)
            tc = torch.tanh(c_new)
            dc = dc + dh * o * (1 - tc * tc)
            da = torch.cat([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                            dh * tc * o * (1 - o)], dim=-1)
            return da, da, torch.zeros_like(dh), dc * f
        da = dh * (1 - h_new * h_new) if self.name == "rnn_tanh" else dh * (h_new > 0).to(dh.dtype)
        return da, da, torch.zeros_like(dh), None


def _lstm_gates(a):
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
    return torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)


CELLS = {c.name: c for c in (Cell("gru", 3, False, "GRU"), Cell("lstm", 4, True, "LSTM"),
                             Cell("rnn_tanh", 1, False, "RNN"), Cell("rnn_relu", 1, False, "RNN"))}


def get(cell) -> Cell:
    """The cell named ``cell`` (one of :data:`CELLS`), or a clear error naming the argument."""
    if isinstance(cell, Cell):
        return cell
    if not isinstance(cell, str):
        raise TypeError(f"cell must be a str, one of {tuple(CELLS)}; got {type(cell).__name__}")
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {tuple(CELLS)}; got {cell!r}")
    return CELLS[cell]


# Where the cell state's arguments stand in each kernel's argument list (rnngen/dispatch and
# csrc/common/schemas.h): a cell without one (the GRU, the Elman cells) has a schema without them.
CELL_STATE_ARGS = {
    "scan_forward": (2, 6),              # c0, c_out
    "scan_backward": (1, 4, 8, 12),      # grad_c, c0, c_out, d_c0
    "decode_forward": (1, 10),           # c0, c_hidden
    "decode_backward": (2, 4, 13, 15),   # grad_c, c0, c_hidden, d_c0
    "sample": (1,),                      # c0
}


def kernel_for(cell, kernel: str, fn):
    """``fn(cell, *args)``, written once with the LSTM's arguments, as ``kernel``'s entry point for
    ``cell``: for a cell without a cell state its arguments take None at CELL_STATE_ARGS[kernel]."""
    if get(cell).has_cell_state:
        return lambda *args: fn(cell, *args)
    absent = CELL_STATE_ARGS[kernel]

    def entry(*args):
        args = list(args)
        for i in absent:  # ascending: each index counts the Nones inserted before it
            args.insert(i, None)
        return fn(cell, *args)
    return entry
