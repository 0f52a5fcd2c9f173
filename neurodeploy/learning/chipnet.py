"""A layered spiking network as the chip runs it while it learns: the forward pass of every rule.

Each layer is a population of CUBA-LIF neurons fed by a dense projection with one step of synaptic
latency (the Dense semantics of ``emulator.loihi``). Neurons integrate without leak (du = 4095, dv = 0:
the input current lasts one step, the membrane keeps it) and reset to zero above threshold, so a neuron's
spike count is a rectified, quantised function of its summed input: the rate-coded ReLU that the rules'
learning signals assume. A bias reaches every layer as an always-on neuron, as on the chip.

Two numerics share one loop: ``"fixed"`` runs ``LoihiFastState`` on integer weights (8-bit, mixed sign,
threshold ``scale``), bit-exact with the emulator; ``"float"`` runs ``FloatCubaState`` on float weights
(threshold 1). Every array carries two leading axes: instances (independent chips: seeds, or mismatched
samples of one chip) and batch (samples presented in parallel to copies of one instance's weights).

A noise source (PAL) adds a draw to the hidden neurons' u or v each step, as the chip's per-compartment
noise does; stochastic neurons (SAL, PAL) fire with escape probability sigmoid((v - vth) / width) instead
of the hard threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurodeploy.emulator.floatcore import FloatCubaState
from neurodeploy.emulator.loihi import VTH_RANGE, LoihiFastState

VTH_MAX = VTH_RANGE[1]


@dataclass
class Numerics:
    """How weights and thresholds are represented: float, or the chip's integers."""

    mode: str = "fixed"  # "fixed" (Loihi integers) or "float"
    scale: int = 64  # fixed: threshold in weight units; float weight 1.0 == ``scale`` integer units
    du: int = 4095  # current decay of the spiking layers (12 bit); < 4095 spreads each input spike's charge
    weight_bits: int = 8

    @property
    def w_max(self) -> float:
        """Largest weight magnitude in float units (the 8-bit mixed range is [-256, 255])."""
        return 255.0 / self.scale if self.mode == "fixed" else np.inf


@dataclass
class Activity:
    """What one presentation leaves behind: spike counts per layer, and the rules' correlation sums."""

    counts: list[np.ndarray]  # per layer incl. the input layer: (inst, batch, n) without bias channels
    steps: int  # steps the input was active: counts / steps is a rate in spikes per step
    readout: np.ndarray  # the output layer's membrane at the end over ``steps``, in threshold units
    noise: np.ndarray | None = None  # the hidden noise current, summed over steps (inst, batch, n_h)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


class ChipMLP:
    """Weights of an L-layer network for ``instances`` chips, and its spiking forward pass.

    ``weights[l]`` is (instances, n_{l+1}, n_l + 1): the last column holds the weights of layer l's
    bias neuron. ``vth_factor[l]`` (instances, 1, n) carries per-neuron threshold mismatch.
    """

    def __init__(
        self,
        sizes: list[int],
        instances: int,
        numerics: Numerics,
        rng: np.random.Generator,
        init_gain: float = 1.0,
    ) -> None:
        self.sizes = list(sizes)
        self.instances = instances
        self.numerics = numerics
        self.weights: list[np.ndarray] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            w = rng.normal(0.0, init_gain / np.sqrt(n_in + 1), (instances, n_out, n_in + 1))
            self.weights.append(self.to_storage(w))
        self.vth_factor = [np.ones((instances, 1, n)) for n in sizes[1:]]
        self.offset = [np.zeros((instances, 1, n)) for n in sizes[1:]]

    # --- representation -------------------------------------------------------------------------
    def to_storage(self, w: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Float weights into the stored form: integers on the 8-bit mixed grid in fixed mode."""
        if self.numerics.mode == "float":
            return np.asarray(w, dtype=float)
        scaled = np.asarray(w) * self.numerics.scale
        if rng is not None:  # stochastic rounding keeps small initial weights unbiased
            scaled = np.floor(scaled + rng.random(scaled.shape))
        return np.clip(np.rint(scaled), -256, 255).astype(np.int64)

    def as_float(self, w: np.ndarray) -> np.ndarray:
        """Stored weights in float units (threshold 1)."""
        return np.asarray(w, dtype=float) / (self.numerics.scale if self.numerics.mode == "fixed" else 1.0)

    def set_mismatch(self, sigma: float, rng: np.random.Generator) -> None:
        """Per-neuron threshold gain 1 + sigma·N(0,1) (clipped to ±3 sigma) and an offset current of
        sigma/10 of threshold per step: the gain and offset variation of mismatched neurons."""
        for k, n in enumerate(self.sizes[1:]):
            e = np.clip(rng.standard_normal((self.instances, 1, n)), -3, 3)
            self.vth_factor[k] = np.maximum(1.0 + sigma * e, 0.2)
            self.offset[k] = 0.1 * sigma * np.clip(rng.standard_normal((self.instances, 1, n)), -3, 3)

    # --- forward pass ---------------------------------------------------------------------------
    def _states(self, batch: int) -> list[FloatCubaState | LoihiFastState]:
        states: list[FloatCubaState | LoihiFastState] = []
        last = len(self.sizes) - 2
        for k, n in enumerate(self.sizes[1:]):
            shape = (self.instances, batch, n)
            if self.numerics.mode == "fixed":
                vth = np.rint(self.numerics.scale * self.vth_factor[k]).astype(np.int64)
                if k == last:  # the readout integrates and never fires: the largest 17-bit threshold
                    vth = np.full_like(vth, VTH_MAX)
                bias = np.rint(self.offset[k] * self.numerics.scale * 64).astype(np.int64)
                du = self.numerics.du if k != last else 4095
                params = {"du": du, "dv": 0, "vth": vth, "bias_mant": np.clip(bias, -4096, 4095), "bias_exp": 0}
                states.append(LoihiFastState(shape, params))
            else:
                du_f = (self.numerics.du + 1) / 4096 if k != last else 1.0
                params = {"du": du_f, "dv": 0.0, "v_th": self.vth_factor[k], "bias_v": self.offset[k]}
                states.append(FloatCubaState(shape, params, reset="zero", spiking=k != last))
        return states

    def forward(
        self,
        spikes_in: np.ndarray,
        active: int,
        noise_std: float = 0.0,
        noise_tau: float = 2.0,
        escape_width: float = 0.0,
        rng: np.random.Generator | None = None,
        record: bool = False,
        noise_into: str = "u",
    ) -> Activity:
        """Present ``spikes_in`` (steps, instances or 1, batch, n_in) and count every layer's spikes.

        Hidden layers get Ornstein-Uhlenbeck noise of stationary std ``noise_std`` (threshold units)
        with correlation time ``noise_tau`` steps (0: white), added to the current u or, with
        ``noise_into="v"``, to the membrane v before the threshold test; if ``escape_width`` > 0 they
        fire stochastically. With ``record`` the per-step spikes are kept in ``extra['trains']``, and for
        the first hidden layer the noise (``noise``), firing probabilities (``escape_p``) and margins
        v - vth before the noise, in thresholds (``margin``).
        """
        steps = spikes_in.shape[0]
        batch = spikes_in.shape[-2]
        n_layers = len(self.weights)
        states = self._states(batch)
        fixed = self.numerics.mode == "fixed"
        unit = self.numerics.scale * 64 if fixed else 1.0  # one threshold in u units
        w_f = [np.asarray(w, dtype=float) for w in self.weights]
        prev = [np.zeros((self.instances, batch, n + 1)) for n in self.sizes[:-1]]  # spikes + bias, t - 1
        counts = [np.zeros((self.instances, batch, n)) for n in self.sizes]
        trains: list[list[np.ndarray]] = [[] for _ in self.sizes]
        n_h = self.sizes[1:-1]
        xi = [np.zeros((self.instances, batch, n)) for n in n_h]
        noise_sum = [np.zeros((self.instances, batch, n)) for n in n_h]
        noise_trains: list[np.ndarray] = []
        escape_p: list[np.ndarray] = []
        margins: list[np.ndarray] = []
        a = np.exp(-1.0 / noise_tau) if noise_tau > 0 else 0.0
        total = steps + n_layers  # let the last input reach the output layer
        for t in range(total):
            x = spikes_in[t] if t < steps else np.zeros_like(spikes_in[0])
            bias_on = 1.0 if t < active else 0.0
            new_prev = []
            layer_in = np.broadcast_to(x, (self.instances, batch, x.shape[-1]))
            counts[0] += layer_in
            if record:
                trains[0].append(layer_in.astype(bool))
            new_prev.append(np.concatenate([layer_in, np.full((self.instances, batch, 1), bias_on)], axis=-1))
            for k in range(n_layers):
                current = prev[k] @ np.swapaxes(w_f[k], -1, -2)  # Dense: the sum of t - 1
                if fixed:
                    current = current * 64.0  # a_in << 6
                if k < n_layers - 1 and noise_std > 0 and rng is not None:
                    xi[k] = a * xi[k] + np.sqrt(1 - a * a) * noise_std * rng.standard_normal(xi[k].shape)
                    noise_sum[k] += xi[k]
                    if record and k == 0:
                        noise_trains.append(xi[k].copy())
                    noise_now = np.rint(xi[k] * unit) if fixed else xi[k]
                    if noise_into == "u":
                        current = current + noise_now
                else:
                    noise_now = None
                st = states[k]
                into_v = noise_now is not None and noise_into == "v"
                if (escape_width > 0 or into_v) and k < n_layers - 1 and rng is not None:
                    v_noise = noise_now if into_v else None
                    s, prob, margin = _open_threshold_step(st, current, fixed, escape_width * unit, v_noise, rng)
                    if record and k == 0:
                        margins.append(margin / unit)
                    if record and k == 0 and prob is not None:
                        escape_p.append(prob)
                elif fixed:
                    s = st.step(current, t).copy()
                else:
                    s = st.step(current)
                counts[k + 1] += s
                if record:
                    trains[k + 1].append(s.astype(bool))
                if k < n_layers - 1:
                    new_prev.append(np.concatenate([s, np.full((self.instances, batch, 1), bias_on)], axis=-1))
            prev = new_prev
        extra: dict[str, np.ndarray] = {}
        if record:
            extra["trains"] = [np.stack(tr) for tr in trains]  # type: ignore[assignment]
            if noise_trains:
                extra["noise"] = np.stack(noise_trains)
            if escape_p:
                extra["escape_p"] = np.stack(escape_p)
            if margins:
                extra["margin"] = np.stack(margins)
        readout = np.asarray(states[-1].v, dtype=float) / (unit * active)
        return Activity(counts, active, readout, noise_sum[0] if n_h else None, extra)


def _open_threshold_step(
    st: FloatCubaState | LoihiFastState,
    current: np.ndarray,
    fixed: bool,
    width: float,
    v_noise: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One step with the threshold test done here: integrate as usual, add ``v_noise`` to the membrane
    (the noise source's v target), then spike deterministically (v > vth) or, if ``width`` > 0, with
    escape probability p = sigmoid((v - vth) / width), and reset to zero.

    Returns the spikes, p: the neuron's own firing probability (None for the hard threshold), which
    SAL's and PAL's rules read locally, and the margin v - vth before the noise (PAL's gate)."""
    if fixed:
        assert isinstance(st, LoihiFastState)
        saved_vth = st.vth
        st.vth = np.full_like(np.broadcast_to(saved_vth, st.v.shape), np.inf)
        st.step(current)
        st.vth = saved_vth
        vth = saved_vth
    else:
        assert isinstance(st, FloatCubaState)
        saved = st.v_th
        st.v_th = np.inf
        st.step(current)
        st.v_th = saved
        vth = saved
    margin = st.v - vth  # before this step's membrane noise
    if v_noise is not None:
        st.v = st.v + v_noise
    if width > 0:
        p = 0.5 + 0.5 * np.tanh((st.v - vth) / (2.0 * width))  # the logistic, without overflow
        s = rng.random(st.v.shape) < p
    else:
        p, s = None, st.v > vth
    st.v = np.where(s, 0.0, st.v)
    if fixed:  # the membrane moved outside the state's own step: widen its proven v range
        u_lo, u_hi, v_lo, v_hi = st.bounds
        st.bounds = (u_lo, u_hi, min(v_lo, float(st.v.min(initial=0.0))), max(v_hi, float(st.v.max(initial=0.0))))
    return s, p, margin
