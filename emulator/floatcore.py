"""Float CUBA-LIF core: the ideal profile's numerics, the same equations as ``compiler.ir`` in float64."""

from __future__ import annotations

import numpy as np


class FloatCubaState:
    """u, v of one population over leading axes; ``step`` advances one time step."""

    def __init__(self, shape: tuple[int, ...], params: dict[str, np.ndarray], reset: str, spiking: bool) -> None:
        self.u = np.zeros(shape)
        self.v = np.zeros(shape)
        self.du = np.asarray(params["du"], dtype=float)
        self.dv = np.asarray(params["dv"], dtype=float)
        self.bias_u = np.asarray(params.get("bias_u", 0.0), dtype=float)
        self.bias_v = np.asarray(params.get("bias_v", 0.0), dtype=float)
        self.v_th = np.asarray(params.get("v_th", np.inf), dtype=float)
        self.v_reset = np.asarray(params.get("v_reset", 0.0), dtype=float)
        self.subtract = reset == "subtract"
        self.spiking = spiking
        self.u_wraps = 0
        self.v_saturations = 0

    def step(self, a_in: np.ndarray) -> np.ndarray:
        self.u = (1.0 - self.du) * self.u + a_in + self.bias_u
        v = (1.0 - self.dv) * self.v + self.u + self.bias_v
        if not self.spiking:
            self.v = v
            return np.zeros(v.shape, dtype=bool)
        spikes = v > self.v_th
        if self.subtract:
            self.v = np.where(spikes, v - self.v_th, v)
        else:
            self.v = np.where(spikes, self.v_reset, v)
        return spikes
