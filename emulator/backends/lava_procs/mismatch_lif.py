"""A Lava process and ``floating_pt`` model for CUBA LIF neurons with every parameter per neuron.

A sampled analog chip instance (``emulator.mismatch.sample``) gives each neuron its own decays,
threshold and biases. Lava's own LIF cannot hold that: its ``du``/``dv`` are one value per process
(``Var(shape=(1,))``), its float model has no ``v_reset`` and no subtractive reset. ``MismatchLIF``
keeps du, dv, v_th, v_reset, bias_u and bias_v as per-neuron Vars, and its model performs the
update of ``emulator.floatcore.FloatCubaState`` for NIR-read graphs with the same float64
operations in the same order, so that both give the same bits for the same input:

    u = (1 - du) * u + a_in + bias_u
    v = (1 - dv) * v + u + bias_v
    spike = v > v_th;  v = v_reset (reset "zero") or v - v_th (reset "subtract") where it spiked

``start`` holds the neurons at rest (u = v = 0, no spikes, no bias integrated) for their first
``start`` Lava steps: the float Lava backend runs a population that many steps behind the emulator
(``lava_float.lava_offsets``), and its step ``start + t`` must be the emulator's step t, from rest.

Importing this module imports Lava (after the Python 3.11 compatibility step), so only the Lava
backend imports it, lazily. The model is found the way Lava finds its own ones: it lives in the
process's module and carries ``@implements``/``@requires``/``@tag("floating_pt")``, so
``Loihi2SimCfg(select_tag="floating_pt")`` selects it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.emulator.backends.lava_compat import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

PER_NEURON = ("du", "dv", "v_th", "v_reset", "bias_u", "bias_v")


class MismatchLIF(AbstractProcess):
    """CUBA LIF neurons whose du, dv, v_th, v_reset, bias_u and bias_v are arrays of one value per neuron.

    ``subtract``: reset by subtracting v_th instead of setting v to v_reset. A non-spiking (leaky
    integrator) population is expressed with ``v_th = inf``: v > inf never holds, so v is never reset.
    ``start``: Lava steps to stay at rest before the first update.
    """

    def __init__(self, *, shape: tuple[int, ...], subtract: bool = False, start: int = 0, name: str | None = None,
                 **per_neuron: Any) -> None:  # fmt: skip
        missing = set(PER_NEURON) - set(per_neuron)
        if missing or set(per_neuron) - set(PER_NEURON):
            raise TypeError(f"MismatchLIF needs exactly {PER_NEURON}, got {sorted(per_neuron)}")
        values = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), shape).copy() for k, v in per_neuron.items()}
        super().__init__(shape=shape, subtract=bool(subtract), start=int(start), name=name, **values)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=np.zeros(shape))
        self.v = Var(shape=shape, init=np.zeros(shape))
        self.du = Var(shape=shape, init=values["du"])
        self.dv = Var(shape=shape, init=values["dv"])
        self.v_th = Var(shape=shape, init=values["v_th"])
        self.v_reset = Var(shape=shape, init=values["v_reset"])
        self.bias_u = Var(shape=shape, init=values["bias_u"])
        self.bias_v = Var(shape=shape, init=values["bias_v"])


@implements(proc=MismatchLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyMismatchLIFModelFloat(PyLoihiProcessModel):
    """float64 update of ``MismatchLIF``, operation for operation that of ``FloatCubaState`` (NIR rule)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    v_th: np.ndarray = LavaPyType(np.ndarray, float)
    v_reset: np.ndarray = LavaPyType(np.ndarray, float)
    bias_u: np.ndarray = LavaPyType(np.ndarray, float)
    bias_v: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if self.time_step <= self.proc_params["start"]:  # not started yet: at rest, silent
            self.s_out.send(np.zeros(self.u.shape, dtype=bool))
            return
        self.u[:] = (1.0 - self.du) * self.u + a_in + self.bias_u
        v = (1.0 - self.dv) * self.v + self.u + self.bias_v
        spikes = v > self.v_th
        if self.proc_params["subtract"]:
            self.v[:] = np.where(spikes, v - self.v_th, v)
        else:
            self.v[:] = np.where(spikes, self.v_reset, v)
        self.s_out.send(spikes)


__all__ = ["MismatchLIF", "PyMismatchLIFModelFloat", "PER_NEURON"]
