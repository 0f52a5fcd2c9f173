"""Mismatch factors applied to a Loihi (integer) network: what-if studies for digital chips.

Digital chips have no device mismatch, so their profiles carry none and sampling them with the
profile's sigmas returns the nominal network. Users may still set sigmas, e.g. to ask how robust a
deployed network is to threshold spread, or to model a chip whose parameters are trimmed per neuron.
The factors are drawn exactly as for analog chips (``mismatch._factors``: the same streams, so
instance k alone equals instance k of a batch), then mapped onto the integer registers and rounded to
what the chip can hold:

- ``v_threshold``: vth·f, rounded, within [0, 2^17 − 1];
- ``tau_mem`` / ``tau_syn``: a decay d = dt/τ scales by 1/f. For v the register is d·4096 (``dv``); for
  u the effective decay is ``du`` + 1 (Lava's offset), so ``du`` → round((du + 1)/f) − 1. A decay of 0
  (no leak) keeps its value, and results stay within [0, 4095];
- ``bias``: the mantissa, rounded, within the 13-bit signed range (the exponent is kept);
- ``weight``: w·f, rounded to the projection's weight grid (2^(8 − bits + mixed)) and kept on it within
  [−256, 255].
"""

from __future__ import annotations

import copy

import numpy as np

from neurodeploy.emulator.loihi import BIAS_MANT_RANGE, DU_RANGE, DV_RANGE, VTH_RANGE
from neurodeploy.emulator.network import CoreNetwork, CorePopulation

# profile parameter -> (Loihi register, how a factor applies)
_REGISTERS = {"v_threshold": ("vth", "scale"), "tau_mem": ("dv", "decay"), "tau_syn": ("du", "decay_u"),
              "bias": ("bias_mant", "scale")}  # fmt: skip
_RANGES = {"vth": VTH_RANGE, "dv": DV_RANGE, "du": DU_RANGE, "bias_mant": BIAS_MANT_RANGE}


def _apply(value: np.ndarray, f: np.ndarray, how: str, lo: int, hi: int) -> np.ndarray:
    v = value.astype(np.float64)
    if how == "scale":
        out = v * f
    elif how == "decay":
        out = np.where(v <= 0, v, v / f)
    else:  # du: the effective decay is du + 1
        out = np.where(v <= 0, v, (v + 1) / f - 1)
    return np.clip(np.rint(out), lo, hi).astype(np.int64)


def _weights(w: np.ndarray, f: np.ndarray, bits: int, sign_mode: str) -> np.ndarray:
    step = 2 ** (8 - int(bits) + int(sign_mode == "mixed"))
    levels = np.clip(np.rint(np.asarray(w, dtype=np.float64)[None] * f / step), -256 // step, 255 // step)
    return (levels * step).astype(np.int64)


def loihi_instances(core: CoreNetwork, factors: dict[str, dict[str, np.ndarray]], instances: int) -> CoreNetwork:
    """The network with (instances, 1, n) integer parameters and, where weights vary, (instances, n_dst,
    n_src) weights; ``factors`` as ``mismatch._factors`` returns them per parameter name."""
    pops: list[CorePopulation] = []
    for pop in core.populations:
        new = copy.copy(pop)
        if pop.model != "input":
            new.params = {}
            for key, value in pop.params.items():
                nominal = np.broadcast_to(np.asarray(value), (pop.size,)).astype(np.int64)
                arr = np.repeat(nominal[None, None, :], instances, axis=0)
                for name, (register, how) in _REGISTERS.items():
                    f = factors.get(name, {}).get(pop.name)
                    if key == register and f is not None:
                        arr = _apply(arr, f, how, *_RANGES[register])
                new.params[key] = arr
        pops.append(new)
    projs = []
    for pr in core.projections:
        new_pr = copy.copy(pr)
        f = factors.get("weight", {}).get(pr.name)
        if f is not None:
            w = pr.weight.toarray() if hasattr(pr.weight, "toarray") else np.asarray(pr.weight)
            new_pr.weight = _weights(w, f, pr.num_weight_bits, pr.sign_mode)
        projs.append(new_pr)
    return CoreNetwork(
        pops, projs, list(core.inputs), list(core.outputs), core.numerics, list(core.readouts), core.arithmetic
    )
