"""Train the demo's snnTorch network on Yin-Yang, shaped so that it survives a Loihi 2 deployment.

The network is ``Linear -> Leaky -> Linear -> Leaky`` (bias-free, zero reset without reset delay,
per-neuron beta and threshold vectors), the only form that exports to NIR and maps onto a chip
exactly (nir-conventions.md §4-§7). Choices made for the chip rather than for float accuracy:

* no Linear bias: a Loihi Dense has none, and a neuron bias would bypass the Dense's one-step
  latency; the encoder's always-on bias input carries the offset through the same path instead;
* betas 1 - 2**-3 and 1 - 2**-4: the 12-bit decays represent them exactly (dv = 512, 256);
* quantisation-aware training in the second half of training (7 bits + sign, one scale per layer,
  straight-through gradient); the returned weights lie on that grid (k * max|w| / 127). A compiler
  that maps each layer's max |w| to mantissa 254 (lambda = 254 * 2**e / max|w|) reproduces them
  exactly: seed 0 through the loihi2 emulator then changes 0 of 1000 test predictions. One that
  puts max |w| elsewhere re-rounds every weight (~40 dB SNR) and changes 1-3.5 % of predictions
  (accuracy -0.1 to -1.9 points over seeds 0-2);
* weights limited to |w| <= ``W_MAX`` times the threshold so the per-layer scale stays useful;
* a rate code with silent steps at the end, so a chip that is two steps late still emits every
  output spike within ``steps + 2`` steps; the loss maximises the count margin of the right class.

Classification is ``np.argmax`` of the output spike counts, so ties go to the lowest class index.

Defaults (hidden 64, 32 steps of which 26 carry input, 40 epochs, Adam lr 1e-2 with cosine decay,
batch 50) reach 97-97.5 % float test accuracy over seeds 0-2 in about 25 s on one core. Training
uses one torch thread: the matrices are tiny, so a second thread only adds overhead (2x slower on
the shared 2-core machine), and results do not depend on the host's core count.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from neurodeploy.datasets import EncoderSettings, yin_yang_splits

N_CLASSES = 3
BETA_HIDDEN = 1.0 - 2.0**-3  # 0.875, exact in Loihi's 12-bit decay
BETA_OUT = 1.0 - 2.0**-4  # 0.9375
W_MAX = 2.0
QUANT_LEVELS = 127  # magnitudes 0..127 times one scale per layer: 7 bits + sign


class _Spike(torch.autograd.Function):
    """Heaviside forward (strict ``>``, as snnTorch and Loihi), fast-sigmoid surrogate backward."""

    slope = 5.0

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad / (1.0 + _Spike.slope * x.abs()) ** 2


def _leaky(size: int, beta: float) -> snn.Leaky:
    """A Leaky the NIR exporter accepts: beta and threshold as (size,) vectors, zero reset, no delay."""
    return snn.Leaky(
        beta=torch.full((size,), beta),
        threshold=torch.ones(size),
        reset_mechanism="zero",
        reset_delay=False,
        learn_beta=False,
        init_hidden=True,
        spike_grad=_Spike.apply,  # the training surrogate; also keeps the module picklable
    )


class SpikingMLP(nn.Sequential):
    """``Linear -> Leaky -> Linear -> Leaky`` as an ``nn.Sequential`` so snnTorch's NIR export can trace it.

    ``forward`` on ``(time, batch, features)`` runs a whole sequence from rest and returns
    ``(time, batch, outputs)`` spikes; on ``(batch, features)`` or ``(features,)`` it advances one
    step without resetting, which is what ``snntorch.export_nir.export_to_nir`` traces.
    """

    def __init__(self, n_inputs: int, hidden: int, n_outputs: int = N_CLASSES) -> None:
        super().__init__(
            nn.Linear(n_inputs, hidden, bias=False),
            _leaky(hidden, BETA_HIDDEN),
            nn.Linear(hidden, n_outputs, bias=False),
            _leaky(n_outputs, BETA_OUT),
        )

    def reset_state(self) -> None:
        for layer in self:
            if isinstance(layer, snn.Leaky):
                layer.reset_mem()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() <= 2:
            return super().forward(x)
        self.reset_state()
        out = torch.stack([super(SpikingMLP, self).forward(x_t) for x_t in x])
        self.reset_state()
        return out


@dataclass
class TrainedModel:
    """A trained network, the encoder it expects and its float accuracies (fractions in [0, 1])."""

    module: SpikingMLP
    encoder: EncoderSettings
    test_accuracy: float
    val_accuracy: float
    train_accuracy: float
    seed: int
    hidden: int
    epochs: int
    wall_s: float

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Input spikes ``(steps, n, inputs)`` for Yin-Yang features ``(n, 4)``, as in training."""
        return self.encoder.encode(features)


@contextmanager
def _torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def predict_counts(module: nn.Module, spikes: np.ndarray | torch.Tensor, batch: int = 1000) -> np.ndarray:
    """Output spike counts ``(n, classes)`` of ``module`` for input spikes ``(time, n, inputs)``."""
    x = torch.as_tensor(np.asarray(spikes, dtype=np.float32))
    counts = []
    with torch.no_grad():
        for i in range(0, x.shape[1], batch):
            counts.append(module(x[:, i : i + batch]).sum(0).numpy())
    return np.concatenate(counts).astype(np.int64)


def classify(counts: np.ndarray) -> np.ndarray:
    """Class = most output spikes; ``np.argmax`` breaks ties toward the lowest index (also 0 spikes -> 0)."""
    return np.argmax(np.asarray(counts), axis=-1)


def accuracy(module: nn.Module, spikes: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
    """Fraction of samples whose ``classify(predict_counts(...))`` equals the label."""
    return float(np.mean(classify(predict_counts(module, spikes)) == np.asarray(labels)))


def export_nir(module: SpikingMLP, n_inputs: int | None = None) -> nir.NIRGraph:
    """NIR graph of ``module`` via snnTorch's exporter (one unbatched step, batch dim ignored)."""
    from snntorch.export_nir import export_to_nir

    n_in = n_inputs if n_inputs is not None else module[0].in_features
    module.reset_state()
    with warnings.catch_warnings():  # nirtorch deprecates the tracer snnTorch 1.0 still calls
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = export_to_nir(module, torch.zeros(1, n_in), ignore_dims=[0])
    module.reset_state()
    return graph


def _fake_quant(w: torch.Tensor) -> torch.Tensor:
    """Round to one scale per layer (max |w| / 127), straight-through gradient."""
    scale = w.detach().abs().max().clamp_min(1e-8) / QUANT_LEVELS
    return w + (torch.round(w / scale) * scale - w).detach()


def _lif_sequence(cur: torch.Tensor, beta: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """Leaky with zero reset and no reset delay over time (same arithmetic as snn.Leaky)."""
    mem = torch.zeros_like(cur[0])
    out = []
    for c in cur:
        mem = beta * mem + c
        s = _Spike.apply(mem - thr)
        mem = mem * (1.0 - s.detach())
        out.append(s)
    return torch.stack(out)


def _fast_forward(module: SpikingMLP, x: torch.Tensor, quant: bool) -> torch.Tensor:
    """Training forward: each layer's Linear applied to all steps at once, then its Leaky loop."""
    fc1, lif1, fc2, lif2 = module
    w1, w2 = (fc1.weight, fc2.weight)
    if quant:
        w1, w2 = _fake_quant(w1), _fake_quant(w2)
    s1 = _lif_sequence(x @ w1.T, lif1.beta, lif1.threshold)
    return _lif_sequence(s1 @ w2.T, lif2.beta, lif2.threshold)


def _snap_weights(module: SpikingMLP) -> None:
    """Store the grid values the last quantised epochs computed with, so export carries them."""
    with torch.no_grad():
        for layer in (module[0], module[2]):
            layer.weight.copy_(_fake_quant(layer.weight))


def train_yinyang_snntorch(
    hidden: int = 64,
    steps: int = 32,
    epochs: int = 40,
    seed: int = 0,
    progress: Callable[[int, float, float], None] | None = None,
    encoder: EncoderSettings | None = None,
    batch_size: int = 50,
    lr: float = 1e-2,
    count_scale: float = 0.5,
    quant_from: float = 0.5,
    n_train: int | None = None,
) -> TrainedModel:
    """Train with surrogate gradients; the best-validation epoch is kept, test accuracy reported once.

    Loss: cross-entropy on ``count_scale * spike counts`` (a count margin, so classification by
    counts is what is optimised). ``progress(epoch, mean_loss, val_accuracy)`` is called per epoch.
    ``encoder`` overrides the default rate code (then ``steps`` is ignored).
    ``quant_from`` is the fraction of epochs after which weights are fake-quantised.
    ``n_train`` truncates the training set (for smoke tests). Deterministic for a given seed.
    """
    t0 = time.perf_counter()
    slack = max(2, steps // 5)  # silent steps at the end: room for the chip's per-layer latency
    enc = encoder if encoder is not None else EncoderSettings(kind="rate", steps=steps, active=steps - slack)
    splits = yin_yang_splits()
    data = {}
    for name, (feats, labels) in splits.items():
        if name == "train" and n_train is not None:
            feats, labels = feats[:n_train], labels[:n_train]
        data[name] = (torch.from_numpy(enc.encode(feats)), torch.from_numpy(labels))
    x_train, y_train = data["train"]
    n = x_train.shape[1]

    with _torch_threads(1):
        torch.manual_seed(seed)
        rng = np.random.RandomState(seed)
        module = SpikingMLP(enc.n_inputs, hidden)
        opt = torch.optim.Adam([module[0].weight, module[2].weight], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        loss_fn = nn.CrossEntropyLoss()
        best = (-1.0, None)
        for epoch in range(epochs):
            quant = epoch >= int(quant_from * epochs)
            order = torch.from_numpy(rng.permutation(n))
            total = 0.0
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                counts = _fast_forward(module, x_train[:, idx], quant).sum(0)
                loss = loss_fn(count_scale * counts, y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for layer in (module[0], module[2]):
                        layer.weight.clamp_(-W_MAX, W_MAX)
                total += loss.item() * len(idx)
            sched.step()
            with torch.no_grad():
                val_counts = _fast_forward(module, data["validation"][0], quant).sum(0).numpy()
            val_acc = float(np.mean(classify(val_counts) == data["validation"][1].numpy()))
            # Only quantised epochs are eligible, so the kept weights were trained on the grid.
            if quant and val_acc >= best[0]:
                best = (val_acc, {k: v.clone() for k, v in module.state_dict().items()})
            if progress is not None:
                progress(epoch, total / n, val_acc)
        if best[1] is not None:
            module.load_state_dict(best[1])
        _snap_weights(module)
        module.eval()
        accs = {name: accuracy(module, x, y.numpy()) for name, (x, y) in data.items()}
    return TrainedModel(
        module=module,
        encoder=enc,
        test_accuracy=accs["test"],
        val_accuracy=accs["validation"],
        train_accuracy=accs["train"],
        seed=seed,
        hidden=hidden,
        epochs=epochs,
        wall_s=time.perf_counter() - t0,
    )
