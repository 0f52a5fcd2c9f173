"""Float CUBA-LIF core: the ideal profile's numerics, the same equations as ``compiler.ir`` in float64.

Both reset rules of ``compiler.ir`` live here: NIR's (reset in the spiking step) and snnTorch's (reset
from the previous step's membrane inside the update, optionally one step late), because the ideal
profile must reproduce each framework's spikes exactly, not only NIR's reading of them.

Temporal noise (sampled analog chips, ``emulator.mismatch``): the optional parameters ``v_noise`` (standard
deviation per neuron, in membrane units) and ``noise_stream`` (the integer words ``[seed, instance, id]``
of each instance's random stream, shaped ``(*instances, 1, words)``) add ``v_noise * N(0, 1)`` to the
membrane every step. Each instance draws from its own stream, so an instance's noise does not depend on
which other instances, or how many, run beside it.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.errors import NeurodeployError


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
        self.noise = TemporalNoise.from_params(shape, params)
        # refractory period in steps: v held at v_reset that long after a spike (as the Loihi core's counter)
        ref = params.get("refractory")
        self.refractory = None if ref is None or not np.any(ref) else np.asarray(ref, dtype=float)
        if self.refractory is not None and self.rule != "nir":
            raise ValueError("a refractory period needs the NIR reset rule (reset in the spiking step)")
        self.ref_count = None if self.refractory is None else np.zeros(shape)

    def step(self, a_in: np.ndarray) -> np.ndarray:
        self.u = (1.0 - self.du) * self.u + a_in + self.bias_u
        if self.rule != "nir":
            return self._snntorch_step()
        v = (1.0 - self.dv) * self.v + self.u + self.bias_v
        if self.noise is not None:
            v = v + self.noise.draw()
        if not self.spiking:
            self.v = v
            return np.zeros(v.shape, dtype=bool)
        if self.ref_count is not None:
            held = self.ref_count > 0
            v = np.where(held, self.v_reset, v)
            spikes = (v > self.v_th) & ~held
            self.ref_count = np.where(spikes, self.refractory, np.maximum(self.ref_count - 1.0, 0.0))
        else:
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
        if self.noise is not None:
            v = v + self.noise.draw()
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


class TemporalNoise:
    """Gaussian membrane noise drawn afresh every step, one random stream per chip instance.

    The stream words' leading axes name the instances: they broadcast against the state's leading axes
    like any parameter, and every block of the state that shares one instance (all its samples and
    neurons) is filled from that instance's generator in a fixed order. Instance k run alone, or as any
    member of a batch of the same samples, therefore sees the same noise.
    """

    def __init__(self, shape: tuple[int, ...], sigma: np.ndarray, stream: np.ndarray) -> None:
        self.sigma = np.broadcast_to(np.asarray(sigma, dtype=float), shape)
        words = np.asarray(stream)
        lead = tuple(shape[:-1])
        key_lead = (1,) * (len(lead) - (words.ndim - 1)) + words.shape[:-1]
        if len(key_lead) != len(lead) or any(k not in (1, n) for k, n in zip(key_lead, lead, strict=True)):
            raise NeurodeployError(
                f"noise streams shaped {words.shape[:-1]} do not broadcast against the neuron state {lead}",
                "parameter noise_stream",
                "give noise_stream the instance axes of the other parameters: (*instances, 1, words)",
            )
        words = words.reshape(*key_lead, words.shape[-1])
        self.blocks = []
        for index in np.ndindex(*key_lead):
            where = tuple(i if k > 1 else slice(None) for i, k in zip(index, key_lead, strict=True))
            self.blocks.append((where, np.random.default_rng([int(w) for w in words[index]])))
        self.shape = shape

    @classmethod
    def from_params(cls, shape: tuple[int, ...], params: dict[str, np.ndarray]) -> TemporalNoise | None:
        """The noise the parameters ask for, or None (nothing is drawn) without them or at sigma 0."""
        sigma = params.get("v_noise")
        if sigma is None or not np.any(np.asarray(sigma) != 0):
            return None
        if "noise_stream" not in params:
            raise NeurodeployError(
                "v_noise is set but noise_stream is missing",
                "parameter v_noise",
                "sample chip instances with emulator.mismatch.sample, which sets both",
            )
        return cls(shape, sigma, params["noise_stream"])

    def draw(self) -> np.ndarray:
        """One step's noise, shaped like the state."""
        out = np.empty(self.shape)
        for where, rng in self.blocks:
            out[where] = rng.standard_normal(out[where].shape)
        return out * self.sigma
