"""PixelGRU: a categorical raster-order image model on the fused scan and sample ops.

An image [C, H, W] of values 0..levels-1 is read as a sequence of T = H*W*C sub-pixels in raster
order, colour channels as sub-steps (pixel (i, j) channel c is step (i*W + j)*C + c). With h_0
from the class label (and/or a latent vector):

    p(x_t | x_<t) = softmax(W_out[c_t] h_t + b_out[c_t])          c_t = t % C
    h_{t+1}      = GRU(emb[c_t][x_t] + cond, h_t)

``emb[c][k]`` is the GRU's input gate row for value k of channel c (a one-hot input's W_ih
column with b_ih folded in), ``cond`` [3H] the per-image conditioning gates. With
``per_column`` the tables repeat every row instead of every pixel (C = W * channels), so each
column has its own input table and head: position information the ops carry for free. With
``above`` = r the input also holds the pixels of the row above, from r columns left to r right
of the pixel being predicted: h_{t+1} gets, besides emb[c_t][x_t], a table row per neighbour
(the ops' lagged inputs, at sub-step distances (W + d) * channels for d = -r..r; rnngen.ops.sample),
so a stroke's continuation from the row before is seen directly rather than remembered across a
whole row of steps. Training is teacher
forcing: one gather for all input gates, the fused ``scan`` for the recurrence, one batched
head, cross-entropy. Sampling and completion are one fused ``sample`` op.

``cell`` swaps the GRU for another of the ops' cells ("lstm", "rnn_tanh", "rnn_relu"; the class
keeps its name): every gate-sized table ([3H] above) then has G*H entries, G the cell's gate
blocks (GRU 3, LSTM 4, Elman 1), and the LSTM's cell state starts at zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import dispatch
from ..nn.generator import image_shape
from ..ops import _checks, cells, sample_guided, scan
from ..ops import sample as sample_op
from ..ops.rng import philox_uniform
from ..ops.sample.op import MAX_LAGS
from .transforms import AUGMENTATIONS, augmentation_count, check_image_shape, inverse_transform, transform

# XORed into the seed for a mixture's choice of transform: a Philox key of its own, so the choice
# is independent of the pixels' draws (which are keyed by the seed itself).
_COMPONENT_KEY = 0x6D69787475726521  # "mixture!"


class PixelGRU(nn.Module):
    """Categorical pixel-by-pixel GRU.

    Args:
        image_size: int or (height, width).
        channels: colour channels (1 grey, 3 RGB), generated as sub-steps of each pixel.
        levels: values per sub-pixel (256 for 8-bit images, 17 for the built-in digits).
        hidden_size: GRU hidden size H.
        num_classes: condition on a class label in 0..num_classes-1 (None: unconditional).
        latent_size: condition on a latent vector of this size too (0: none).
        dropout: dropout on the hidden states before the output head (training only).
        input_dropout: dropout on each step's input gates (training only).
        weight_dropout: DropConnect on the recurrent weights W_hh (training only): one mask per
            batch, shared by every step, so the recurrence itself is regularised without touching
            the fused scan (the AWD-LSTM recipe; Merity et al., 2017).
        per_column: give every image column its own input table and output head (the tables
            are indexed by column and channel), so the model knows where in a row it is without
            having to count; costs W times the table parameters, no time.
        positions: the same knowledge for W*(G*H + K) parameters: the tables stay shared and every
            column (and channel) adds its own learned row to the input gates
            (``position_gates`` [W*C, G*H]) and to the head's logits (``position_logits`` [W*C,
            K]). A raster-order model that must count its columns loses count: its samples drift
            along the row or wrap round the edge (docs/results-mnist.md). The fused sampler sees
            per-column tables (:meth:`op_tables`), built at each call.
        above: also feed each step the pixels of the row above it, from ``above`` columns to the
            left to ``above`` columns to the right (0: none; 1 gives the three pixels above). Each
            neighbour has its own input table ([rows*(2r+1), C, K, G*H] ``above_gates``); at the
            row ends the neighbours wrap (the pixel at that raster distance), and before the first
            row there are none. Costs one gathered table row per neighbour and step, in training
            and in the fused sampler.
        above_rows: how many rows above are read that way (default 1; with ``above``), each the
            same 2r+1 columns: at most 16 neighbours in all (the sample op's lags).
        above_rank: 0 (default) gives each neighbour a free table; r > 0 makes every table the
            product of one value embedding [C, K, r], shared by the neighbours, and the
            neighbour's own projection [r, G*H] (``above_embedding``, ``above_projection``): a
            value means the same thing wherever it is read, and at 256 levels ten neighbours cost
            10*r*G*H + K*r parameters instead of 10*K*G*H, which 8,000 MNIST images over-fit.
            The ops see the product (:meth:`above_table`), so training and sampling run as before.
        augmentations: condition on which of this many training-time transforms (rotations,
            flips; see rnngen.models.transforms) made the image, through h_0 and the conditioning
            gates like a class label (0: none). This is distribution augmentation (Jun et al.,
            2020): the model learns from the transformed images without having to assign them
            probability as real ones. Transform 0 is the identity, and everything but training
            (likelihoods, sampling, completion) uses it unless told otherwise or ``mixture``
            says to use them all.
        mixture: "none", or the transforms the augmentations are ("flips" or "dihedral", as
            trained with): the model is then the uniform mixture over those transforms of each
            one's raster-order model, p(x) = mean_k p(T_k x | k). Each T_k only moves pixels, so
            this is an exact likelihood (an ensemble of orderings that share their weights, as in
            Uria et al., 2014), and sampling it costs what one ordering costs: draw k, sample in
            T_k's frame, undo T_k. ``forward`` evaluates all of them (that many times the cost);
            completion uses the identity's ordering.
        cell: the recurrent cell, "gru" (default), "lstm", "rnn_tanh" or "rnn_relu"
            (rnngen/ops/cells.py); recorded in ``config``, so checkpoints rebuild it (a config
            without it, from before cells, is a GRU).
        backend: backend of the fused ops ("auto", "reference", "cpu", "triton", "cuda").
    """

    def __init__(self, image_size, channels: int = 1, levels: int = 256, hidden_size: int = 256,
                 num_classes: int | None = None, latent_size: int = 0, dropout: float = 0.0,
                 input_dropout: float = 0.0, per_column: bool = False, weight_dropout: float = 0.0,
                 positions: bool = False,
                 augmentations: int = 0, mixture: str = "none", cell: str = "gru", above: int = 0,
                 above_rows: int = 1, above_rank: int = 0, backend: str = "auto"):
        super().__init__()
        height, width = image_shape(image_size)
        for name, value, low in (("channels", channels, 1), ("levels", levels, 2),
                                 ("hidden_size", hidden_size, 1), ("latent_size", latent_size, 0),
                                 ("augmentations", augmentations, 0), ("above", above, 0),
                                 ("above_rows", above_rows, 1), ("above_rank", above_rank, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError(f"num_classes must be None or an int >= 1, got {num_classes!r}")
        for name, value in (("dropout", dropout), ("input_dropout", input_dropout), ("weight_dropout", weight_dropout)):
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.image_size, self.channels, self.levels = (height, width), channels, levels
        self.hidden_size, self.num_classes, self.latent_size = hidden_size, num_classes, latent_size
        self.dropout, self.input_dropout, self.backend = float(dropout), float(input_dropout), dispatch.check_name(backend)
        self.per_column, self.weight_dropout = bool(per_column), float(weight_dropout)
        if positions and per_column:
            raise ValueError("positions adds a row per column to shared tables, per_column gives every column its "
                             "own tables: give one of them")
        self.positions = bool(positions)
        if mixture not in AUGMENTATIONS:
            raise ValueError(f"mixture must be one of {', '.join(AUGMENTATIONS)}, got {mixture!r}")
        if mixture != "none":
            if augmentations != augmentation_count(mixture):
                raise ValueError(f"mixture={mixture!r} mixes {augmentation_count(mixture)} transforms: it needs "
                                 f"augmentations={augmentation_count(mixture)}, got {augmentations}")
            check_image_shape(mixture, height, width)
        self.augmentations, self.mixture = augmentations, mixture
        if above >= width:
            raise ValueError(f"above must be below the image width {width} (columns either side of the pixel above), "
                             f"got {above}")
        if above and above_rows >= height:
            raise ValueError(f"above_rows must be below the image height {height}, got {above_rows}")
        if above and above_rows * (2 * above + 1) > MAX_LAGS:
            raise ValueError(f"above_rows * (2 * above + 1) neighbours must be at most {MAX_LAGS} (the sample op's "
                             f"lags), got {above_rows} * {2 * above + 1}")
        if above_rank and not above:
            raise ValueError(f"above_rank factors the tables of the pixels above: it needs above >= 1, got above_rank "
                             f"{above_rank} with above 0")
        self.above, self.above_rows, self.above_rank = above, above_rows, above_rank
        self.cell = cells.get(cell).name

        # The ops' "channels": the period of the tables along the sequence. Step t uses table
        # t % C, which is its channel c, or (column j, channel c) as j*channels + c with per_column.
        C, K, H, G = self.tables, levels, hidden_size, self.gate_size
        bound = 1 / math.sqrt(H)  # nn.GRU's initialisation (nn.LSTM's and nn.RNN's too)
        self.input_gates = nn.Parameter(torch.empty(C, K, G).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(G, H).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(G).uniform_(-bound, bound))
        self.head_weight = nn.Parameter(torch.empty(C, K, H).uniform_(-bound, bound))
        self.head_bias = nn.Parameter(torch.zeros(C, K))
        self.h0 = nn.Parameter(torch.zeros(H))
        if self.positions:  # zero: the model starts as the one without positions
            self.position_gates = nn.Parameter(torch.zeros(self.op_period, G))
            self.position_logits = nn.Parameter(torch.zeros(self.op_period, K))
        if above and above_rank:
            # Every neighbour's table is value embedding @ its projection; the product starts with
            # the full tables' spread (standard deviation bound / sqrt(3)).
            self.above_embedding = nn.Parameter(torch.randn(C, K, above_rank))
            self.above_projection = nn.Parameter(
                torch.empty(len(self.lags), C, above_rank, G).uniform_(-bound, bound) / math.sqrt(above_rank))
        elif above:
            self.above_gates = nn.Parameter(torch.empty(len(self.lags), C, K, G).uniform_(-bound, bound))
        if num_classes is not None:
            self.class_h0 = nn.Embedding(num_classes, H)
            self.class_gates = nn.Embedding(num_classes, G)
            nn.init.normal_(self.class_h0.weight, std=0.5)
            nn.init.normal_(self.class_gates.weight, std=0.1)
        if latent_size:
            self.latent_h0 = nn.Linear(latent_size, H)
            self.latent_gates = nn.Linear(latent_size, G, bias=False)
        if augmentations:
            self.augmentation_h0 = nn.Embedding(augmentations, H)
            self.augmentation_gates = nn.Embedding(augmentations, G)
            nn.init.normal_(self.augmentation_h0.weight, std=0.5)
            nn.init.normal_(self.augmentation_gates.weight, std=0.1)

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> dict:
        """The constructor arguments (plain values), enough to rebuild the model from a checkpoint."""
        return {"image_size": list(self.image_size), "channels": self.channels, "levels": self.levels,
                "hidden_size": self.hidden_size, "num_classes": self.num_classes,
                "latent_size": self.latent_size, "dropout": self.dropout,
                "input_dropout": self.input_dropout, "per_column": self.per_column, "positions": self.positions,
                "weight_dropout": self.weight_dropout, "augmentations": self.augmentations,
                "mixture": self.mixture, "cell": self.cell, "above": self.above,
                "above_rows": self.above_rows, "above_rank": self.above_rank}

    @property
    def gate_size(self) -> int:
        """G*H: the width of every gate row (input tables, W_hh, conditioning), G = the cell's gate blocks."""
        return cells.get(self.cell).gates * self.hidden_size

    @property
    def tables(self) -> int:
        """Number of input tables / output heads: one per channel (and column, with per_column)."""
        return self.channels * (self.image_size[1] if self.per_column else 1)

    @property
    def op_period(self) -> int:
        """The period of the ops' tables along the sequence: :attr:`tables`, or with ``positions``
        one table per column and channel (W * channels)."""
        return self.channels * self.image_size[1] if self.positions else self.tables

    def op_tables(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(input gates [P, K, G*H], head weight [P, K, H], head bias [P, K], lag_emb [L, P, K, G*H]
        or None) as the ops take them, P = :attr:`op_period`: the parameters themselves, or with
        ``positions`` the shared tables repeated for every column, its rows added."""
        emb, weight, bias, lag_emb = self.input_gates, self.head_weight, self.head_bias, self.above_table()
        if self.positions:
            W = self.image_size[1]
            emb = emb.repeat(W, 1, 1) + self.position_gates[:, None]
            weight, bias = weight.repeat(W, 1, 1), bias.repeat(W, 1) + self.position_logits
            lag_emb = None if lag_emb is None else lag_emb.repeat(1, W, 1, 1)
        return emb, weight, bias, lag_emb

    @property
    def lags(self) -> tuple[int, ...]:
        """Sub-step distances of the ``above`` neighbours, in the order of ``above_gates``: the
        pixel d columns right of the one k rows above is (k W - d) * channels sub-steps back,
        k = 1..above_rows, then d = r..-r."""
        if not self.above:
            return ()
        W, r = self.image_size[1], self.above
        return tuple((k * W + d) * self.channels for k in range(1, self.above_rows + 1) for d in range(-r, r + 1))

    @property
    def steps(self) -> int:
        """Sequence length T = H * W * C."""
        return self.image_size[0] * self.image_size[1] * self.channels

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())

    # ------------------------------------------------------------------ conditioning

    def _condition(self, n: int, labels: Tensor | None, latents: Tensor | None,
                   augmentation: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """h_0 [n, H] and conditioning gates [n, G*H] for a batch of n images."""
        H = self.hidden_size
        pre_h0 = self.h0.expand(n, H)
        cond = self.h0.new_zeros(n, self.gate_size)
        if self.num_classes is not None:
            labels = self._check_labels(labels, n)
            pre_h0 = pre_h0 + self.class_h0(labels)
            cond = cond + self.class_gates(labels)
        elif labels is not None:
            raise ValueError("labels given, but this model is unconditional (num_classes=None)")
        if self.latent_size:
            if latents is None:
                raise ValueError(f"latents [n, {self.latent_size}] are required: this model has latent_size "
                                 f"{self.latent_size}")
            if not isinstance(latents, Tensor) or not latents.is_floating_point():
                raise TypeError(f"latents must be a floating-point Tensor, got {getattr(latents, 'dtype', type(latents).__name__)}")
            if latents.shape != (n, self.latent_size):
                raise ValueError(f"latents must have shape [{n}, {self.latent_size}], got {list(latents.shape)}")
            latents = self._to_model_device("latents", latents).to(self.h0)
            pre_h0 = pre_h0 + self.latent_h0(latents)
            cond = cond + self.latent_gates(latents)
        elif latents is not None:
            raise ValueError("latents given, but this model has latent_size=0")
        if self.augmentations:
            index = (torch.zeros(n, dtype=torch.long, device=self.h0.device) if augmentation is None
                     else self._check_index("augmentation", augmentation, n, self.augmentations))
            pre_h0 = pre_h0 + self.augmentation_h0(index)
            cond = cond + self.augmentation_gates(index)
        elif augmentation is not None:
            raise ValueError("augmentation given, but this model has augmentations=0")
        return torch.tanh(pre_h0), cond

    def _check_labels(self, labels, n: int) -> Tensor:
        if labels is None:
            raise ValueError(f"labels are required: this model is class-conditional ({self.num_classes} classes)")
        return self._check_index("labels", labels, n, self.num_classes)

    def _check_index(self, name: str, index, n: int, count: int) -> Tensor:
        """``index`` (a class label or augmentation per image) as a LongTensor [n] in 0..count-1."""
        if isinstance(index, Tensor):
            index = self._to_model_device(name, index)
        index = torch.as_tensor(index, device=self.h0.device)
        if index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"{name} must be integers, got {index.dtype}")
        if index.shape != (n,):
            raise ValueError(f"{name} must have shape [{n}], got {list(index.shape)}")
        low, high = (index.min().item(), index.max().item()) if n else (0, 0)  # ints: uint8 would wrap
        if low < 0 or high >= count:
            raise ValueError(f"{name} must be in 0..{count - 1}, got values {low}..{high}")
        return index.long()

    # ------------------------------------------------------------------ layout

    def _to_model_device(self, name: str, t: Tensor) -> Tensor:
        """Inputs follow the model's device (labels built on the CPU for a GPU model are fine),
        but a meta tensor has no values to move: say so instead of failing in a copy."""
        if t.device.type == "meta" and self.h0.device.type != "meta":
            raise ValueError(f"{name} is on meta (no values) but the model is on {self.h0.device}")
        return t.to(self.h0.device)

    def _to_sequence(self, images: Tensor, name: str = "images") -> Tensor:
        """[N, C, H, W] (or [N, H, W] for one channel) integer values -> [N, T] raster order."""
        if not isinstance(images, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(images).__name__}")
        if images.is_floating_point() or images.is_complex() or images.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer pixel values 0..{self.levels - 1}, got {images.dtype}")
        images = self._to_model_device(name, images)
        shape = (self.channels, *self.image_size)
        if images.dim() == 3 and self.channels == 1:
            images = images[:, None]
        if images.dim() != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(f"{name} must have shape [N, {', '.join(map(str, shape))}], got {list(images.shape)}")
        # Compared as Python ints: a uint8 tensor compared with 256 would wrap it to 0.
        low, high = (images.min().item(), images.max().item()) if images.numel() else (0, 0)
        if low < 0 or high >= self.levels:
            raise ValueError(f"{name} values must be in 0..{self.levels - 1}, got {low}..{high}")
        return images.long().permute(0, 2, 3, 1).reshape(images.shape[0], math.prod(shape))

    def _to_images(self, sequence: Tensor) -> Tensor:
        height, width = self.image_size
        return sequence.view(-1, height, width, self.channels).permute(0, 3, 1, 2).contiguous()

    # ------------------------------------------------------------------ likelihood

    def forward(self, images: Tensor, labels: Tensor | None = None, latents: Tensor | None = None,
                augmentation: Tensor | None = None) -> Tensor:
        """Negative log-likelihood of each image in nats, [N] (teacher forcing). ``augmentation``
        [N]: which training transform made each image (models with ``augmentations``), scored
        by that transform's ordering alone; without it, the identity's, or the mixture's for a
        model with ``mixture``."""
        if augmentation is not None or self.mixture == "none":
            return self.log_prob_terms(images, labels, latents, augmentation).sum(dim=1)
        x = self._to_images(self._to_sequence(images))
        n, K = x.shape[0], self.augmentations
        nll = torch.stack([self(transform(x, self.mixture, k), labels, latents, torch.full((n,), k, device=x.device))
                           for k in range(K)])  # [K, N]: image i in transform k's frame, by its ordering
        return math.log(K) - torch.logsumexp(-nll, dim=0)

    def log_prob_terms(self, images: Tensor, labels=None, latents=None, augmentation=None) -> Tensor:
        """Per-sub-pixel negative log-likelihood in nats, [N, T], of one ordering: raster order in
        transform ``augmentation``'s frame (default the identity; a mixture has no such terms)."""
        x = self._to_sequence(images)
        n, T = x.shape
        C, K, H = self.tables, self.levels, self.hidden_size
        h0, cond = self._condition(n, labels, latents, augmentation)
        if T > 1:
            # Input gates of steps 1..T-1: the previous sub-pixel's row of its channel's table.
            channel = torch.arange(T - 1, device=x.device) % C
            gi = F.embedding(channel * K + x[:, :-1], self.input_gates.view(C * K, self.gate_size))
            if self.above:
                gi = gi + self._above_inputs(x)
            if self.positions:  # step t's column: its input's row
                gi = gi + self.position_gates[torch.arange(T - 1, device=x.device) % self.op_period]
            gi = F.dropout(gi, self.input_dropout, self.training) + cond[:, None]
            weight_hh = self.weight_hh
            if self.training and self.weight_dropout:
                weight_hh = F.dropout(weight_hh, self.weight_dropout)
            hidden = scan(gi, h0, weight_hh, self.bias_hh, cell=self.cell, backend=self.backend)  # LSTM: c_0 = 0
            states = torch.cat([h0[:, None], hidden], 1)
        else:
            states = h0[:, None]
        states = F.dropout(states, self.dropout, self.training)
        # Each period of C steps side by side: each table's head applied to its own steps.
        states = states.view(n, T // C, C, H)
        logits = torch.einsum("npch,ckh->npck", states, self.head_weight) + self.head_bias
        if self.positions:  # step t's column: its logits' row
            logits = logits.reshape(n, T // self.op_period, self.op_period, K) + self.position_logits
        nll = F.cross_entropy(logits.reshape(-1, K), x.reshape(-1), reduction="none")
        return nll.view(n, T)

    def _above_inputs(self, x: Tensor) -> Tensor:
        """Input gates of steps 1..T-1 from the row above, [n, T-1, G*H]: the sum over the lags L_j
        of above_gates[j][channel of s - L_j][x_{s - L_j}] where s - L_j >= 0 (one embedding bag)."""
        n, T = x.shape
        C, K, G = self.tables, self.levels, self.gate_size
        lags = torch.tensor(self.lags, device=x.device)
        source = torch.arange(1, T, device=x.device)[:, None] - lags  # [T-1, L] source steps
        table = (torch.arange(len(lags), device=x.device) * C + source % C) * K  # row of value 0
        pad = len(lags) * C * K  # a zero row: no neighbour before the first row
        index = torch.where(source >= 0, table + x[:, source.clamp_min(0)], pad)  # [n, T-1, L]
        above_gates = self.above_table()
        rows = torch.cat([above_gates.reshape(pad, G), above_gates.new_zeros(1, G)])
        return F.embedding_bag(index.view(-1, len(lags)), rows, mode="sum", padding_idx=pad).view(n, T - 1, G)

    def above_table(self) -> Tensor | None:
        """The input tables of the pixels above, [L, C, K, G*H] in the order of :attr:`lags` (the
        ops' ``lag_emb``), None without ``above``; with ``above_rank`` the product of the shared
        value embedding and each neighbour's projection."""
        if not self.above:
            return None
        if self.above_rank:
            return torch.einsum("ckr,lcrg->lckg", self.above_embedding, self.above_projection)
        return self.above_gates

    def bits_per_dim(self, images: Tensor, labels=None, latents=None) -> Tensor:
        """Negative log-likelihood per sub-pixel in bits, [N]."""
        return self(images, labels, latents) / (self.steps * math.log(2))

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def sample(self, n: int, labels=None, temperature: float = 1.0, seed: int = 0, *, latents=None,
               row_offset: int = 0, backend: str | None = None, precision: str = "fp32",
               guidance: float = 0.0) -> Tensor:
        """``n`` images, LongTensor [n, C, H, W], drawn by the fused sample op. The same seed
        gives the same images on every backend; ``row_offset`` is the index of this batch's first
        image in a larger batch, so shards of a batch draw what the whole batch would.
        ``precision="bf16"`` rounds the recurrent and head weights to bfloat16 (see rnngen.sample).

        ``guidance`` w > 0 (class-conditional models): draw each pixel from
        p(v | x_<t, y)^(1+w) / p(v | x_<t)^w, p(v | x_<t) being this model's own mixture over the
        classes (rnngen.sample_guided), which makes samples look more like their class. It runs
        a PyTorch step loop over one state per class, not the fused op: num_classes times the
        arithmetic, and far slower on a CPU than w = 0."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        return self._generate(n, labels, latents, temperature, seed, None, row_offset, backend, precision, guidance)

    def _components(self, n: int, seed: int, row_offset: int) -> Tensor | None:
        """For a mixture: the transform each of the n images is drawn in, uniform, [n]. A Philox
        draw keyed by ``seed`` (a key apart from the pixels' draws) at each image's index in the
        whole batch, so shards of a batch, and every backend, draw the same ones."""
        if self.mixture == "none" or n == 0:
            return None
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        _checks.positive_int("row_offset", row_offset, minimum=0)
        offsets = torch.arange(row_offset, row_offset + n, dtype=torch.int64)
        uniform = philox_uniform(seed ^ _COMPONENT_KEY, offsets)
        return (uniform * self.augmentations).long().clamp_max(self.augmentations - 1).to(self.h0.device)

    @torch.no_grad()
    def complete(self, images: Tensor, mask: Tensor, labels=None, temperature: float = 1.0, seed: int = 0, *,
                 latents=None, row_offset: int = 0, backend: str | None = None, precision: str = "fp32",
                 guidance: float = 0.0) -> Tensor:
        """Keep ``images`` where ``mask`` is True and sample the rest, LongTensor [N, C, H, W].

        ``mask``: bool [N, C, H, W], [N, H, W] or [H, W] (broadcast over images and channels),
        e.g. the top half. Each sampled value is conditioned on every value before it in raster
        order, known or sampled (pixels after a sampled one are not looked at). ``guidance``: as
        in :meth:`sample` (the known pixels count in the class posterior like drawn ones)."""
        x = self._to_sequence(images)
        n = x.shape[0]
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool Tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
        full = (n, self.channels, *self.image_size)
        m = mask
        if m.dim() == 2:
            m = m[None, None]
        elif m.dim() == 3:
            m = m[:, None]
        try:
            m = self._to_model_device("mask", m).expand(full)
        except RuntimeError:
            raise ValueError(f"mask must have shape [H, W], [N, H, W] or [N, C, H, W] matching images "
                             f"{list(full)}, got {list(mask.shape)}") from None
        known = torch.where(self._to_sequence(m.long()) > 0, x, -1)
        return self._generate(n, labels, latents, temperature, seed, known, row_offset, backend, precision, guidance)

    def _generate(self, n, labels, latents, temperature, seed, known, row_offset, backend, precision,
                  guidance=0.0) -> Tensor:
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not (math.isfinite(temperature) and temperature > 0)):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        guidance = _checks.guidance(guidance)
        if guidance and self.num_classes is None:
            raise ValueError("guidance needs a class-conditional model (num_classes); this one is unconditional")
        # Completion keeps the identity's ordering: the known pixels are given in raster order.
        component = self._components(n, seed, row_offset) if known is None else None
        h0, cond = self._condition(n, labels, latents, component)
        if n == 0:
            return torch.zeros(0, self.channels, *self.image_size, dtype=torch.long, device=h0.device)
        tables = self.op_tables()
        if guidance:
            values = self._guided(n, labels, latents, component, tables, float(temperature), seed, known,
                                  row_offset, precision, guidance)
        else:
            emb, head_weight, head_bias, lag_emb = tables
            values = sample_op(h0, emb, self.weight_hh, self.bias_hh, head_weight,
                               head_bias, self.steps, cond=cond, lag_emb=lag_emb, lags=self.lags,
                               temperature=float(temperature), seed=seed, known=known, row_offset=row_offset,
                               cell=self.cell, backend=backend or self.backend, precision=precision)
        images = self._to_images(values)
        if component is not None:  # each image from its transform's frame back to the image's
            for k in component.unique().tolist():
                chosen = component == k
                images[chosen] = inverse_transform(images[chosen], self.mixture, k)
        return images

    def _guided(self, n, labels, latents, component, tables, temperature, seed, known, row_offset, precision,
                guidance) -> Tensor:
        """rnngen.sample_guided with a stream per class: image i's streams share its latents and
        mixture component and differ in the class."""
        R = self.num_classes
        classes = torch.arange(R, device=self.h0.device).repeat(n)
        if isinstance(latents, Tensor):
            latents = self._to_model_device("latents", latents).repeat_interleave(R, 0)
        if component is not None:
            component = component.repeat_interleave(R, 0)
        h0, cond = self._condition(n * R, classes, latents, component)
        target = self._check_labels(labels, n)
        emb, head_weight, head_bias, lag_emb = tables
        return sample_guided(h0.view(n, R, -1), emb, self.weight_hh, self.bias_hh, head_weight,
                             head_bias, self.steps, target=target, guidance=float(guidance),
                             cond=cond.view(n, R, -1), lag_emb=lag_emb, lags=self.lags, temperature=temperature,
                             seed=seed, known=known, row_offset=row_offset, cell=self.cell, precision=precision)
