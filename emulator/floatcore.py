"""Float CUBA-LIF core: the ideal profile's numerics, the same equations as ``compiler.ir`` in float64.

Both reset rules of ``compiler.ir`` live here: NIR's (reset in the spiking step) and snnTorch's (reset
from the previous step's membrane inside the update, optionally one step late), because the ideal
profile must reproduce each framework's spikes exactly, not only NIR's reading of them.
"""

from __future__ import annotations

import numpy as np


class FloatCubaState:
    """u, v of one population over leading axes; ``step`` advances one time step."""

    def __init__(
        self,
        shape: tuple[int, ...],
        params: dict[str, np.ndarray],
        reset: str,
        spiking: bool,
        reset_rule: str = "nir",
        reset_delay: bool = False,
    ) -> None:
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
        self.rule = reset_rule if spiking else "nir"
        self.reset_delay = bool(reset_delay)
        self.u_wraps = 0
        self.v_saturations = 0

    def step(self, a_in: np.ndarray) -> np.ndarray:
        self.u = (1.0 - self.du) * self.u + a_in + self.bias_u
        if self.rule != "nir":
            return self._snntorch_step()
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

    def _snntorch_step(self) -> np.ndarray:
        """snnTorch's Leaky/Synaptic forward: r from the stored v, reset inside the update, then the spike."""
        r = self.v > self.v_th
        v_prev = self.v
        if not self.subtract and self.rule == "snntorch_leaky":  # Leaky._base_zero: mem = (1 - r) * mem
            v_prev = np.where(r, 0.0, v_prev)
        v = (1.0 - self.dv) * v_prev + self.u + self.bias_v
        if self.subtract:  # _base_sub: mem - r * threshold
            v = np.where(r, v - self.v_th, v)
        elif self.rule == "snntorch":  # Synaptic/RLeaky/RSynaptic._base_zero: mem - r * mem
            v = np.where(r, 0.0, v)
        spikes = v > self.v_th
        if not self.reset_delay:  # do_reset = spk - r, "avoid double reset"
            again = self.v_th if self.subtract else v  # mem - do_reset * threshold, or mem - do_reset * mem
            v = np.where(spikes & ~r, v - again, np.where(~spikes & r, v + again, v))
        self.v = v
        return spikes
