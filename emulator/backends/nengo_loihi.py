"""Run a Loihi 1 CoreNetwork on nengo-loihi 1.1.0's emulator: the Loihi 1 oracle, and a speed peer.

nengo-loihi's emulator (``nengo_loihi/emulator/interface.py``) was built alongside Loihi 1. Given the
integers a network compiled for ``loihi1`` holds, it computes per-neuron du, dv, vth, bias and the
refractory counter, the 21-bit accumulator and 23-bit u wraps and v saturation, with one step of
synaptic latency. Strict mode is off, so an overflow wraps as on the chip instead of raising.

What it cannot express is refused: synaptic delays other than 1 (its emulator has none), batches,
reset modes other than zero, and non-spiking populations. The weights it receives are our stored
mantissas passed through its own two-part chip shift (``builder/discretize.py`` ``shift``, then << 6).

Time alignment: nengo-loihi's step k + 1 is our step k; spikes, u and v line up index for index.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping

import numpy as np

from neurodeploy.emulator.loihi import prepare_weights
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import NeurodeployError

V_LIM = (1 << 23) - 1  # vmin / vmax: the widest Loihi 1 allows
WHERE = "neurodeploy.emulator.backends.nengo_loihi"
INSTALL_HINT = "install the oracles extra: pip install -e '.[oracles]'"


def available() -> tuple[bool, str]:
    """Whether nengo-loihi's emulator imports here, and why not if it does not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nengo 4 warns that nengo-loihi 1.1 is untested with it
            importlib.import_module("nengo_loihi.emulator")
    except Exception as exc:  # an install that does not import is no oracle either
        return False, f"nengo-loihi does not import: {exc!r}"
    return True, ""


def _to_int(arr: np.ndarray, values: np.ndarray) -> None:
    """Turn one of nengo-loihi's float32 parameter arrays into int32 in place, as its discretizer does."""
    arr.dtype = np.int32
    arr[:] = np.asarray(values, dtype=np.int64)


def _check(net: CoreNetwork, x: np.ndarray) -> None:
    if net.numerics != "loihi" or len(net.inputs) != 1:
        raise NeurodeployError("nengo-loihi runs Loihi fixed-point networks with one input population",
                               where=WHERE, hint="compile for the loihi1 profile")  # fmt: skip
    if x.ndim != 2:
        raise NeurodeployError(f"nengo-loihi runs one sample: inputs of shape (steps, n), got {x.shape}",
                               where=WHERE, hint="run each sample on its own")  # fmt: skip
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        if pop.model != "loihi" or pop.reset != "zero" or not pop.spiking:
            raise NeurodeployError("nengo-loihi's compartment is a spiking CUBA neuron with reset to zero",
                                   where=f"population {pop.name!r}")  # fmt: skip
        if any(np.ndim(v) > 1 for v in pop.params.values()):
            raise NeurodeployError("nengo-loihi runs one chip instance; parameters have a batch axis",
                                   where=f"population {pop.name!r}")  # fmt: skip
    for pr in net.projections:
        if pr.delay != 1 or pr.dst in net.inputs or np.ndim(pr.weight) != 2:
            raise NeurodeployError("nengo-loihi's emulator has one step of synaptic latency and no delays",
                                   where=f"projection {pr.name!r}", hint="use delay 1")  # fmt: skip


def run_nengo_loihi(net: CoreNetwork, inputs: Mapping[str, np.ndarray], steps: int | None = None
                    ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """``net`` on nengo-loihi's emulator: ``{population: {"spikes", "u", "v"}}``, each (steps, n)."""
    ok, why = available()
    if not ok:
        raise NeurodeployError(why, where=WHERE, hint=INSTALL_HINT)
    from nengo_loihi.block import Axon, LoihiBlock, Synapse
    from nengo_loihi.builder import Model
    from nengo_loihi.builder.discretize import shift
    from nengo_loihi.emulator import EmulatorInterface
    from nengo_loihi.inputs import SpikeInput
    from nengo_loihi.probe import LoihiProbe

    class Emulator(EmulatorInterface):
        strict = False  # overflow wraps, as on the chip

    x = np.asarray(inputs[net.inputs[0]]).astype(bool)
    _check(net, x)
    steps = x.shape[0] if steps is None else int(steps)
    model = Model()
    inp = SpikeInput(x.shape[-1])
    for k in range(x.shape[0]):
        inp.add_spikes(k + 1, np.flatnonzero(x[k]))  # nengo's step k + 1 is our step k
    model.add_input(inp)
    blocks, probes = {}, {}
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        block = LoihiBlock(pop.size, label=pop.name)
        c, p = block.compartment, pop.params
        c.scale_u = c.scale_v = False
        _to_int(c.decay_u, p["du"])
        _to_int(c.decay_v, p["dv"])
        _to_int(c.vth, np.asarray(p["vth"], dtype=np.int64) << 6)
        _to_int(c.bias, np.asarray(p["bias_mant"], dtype=np.int64) << np.asarray(p["bias_exp"], dtype=np.int64))
        c.refract_delay[:] = np.asarray(p.get("refractory", 0)) + 1
        c.vmin, c.vmax = -V_LIM, V_LIM
        model.add_block(block)
        blocks[pop.name] = block
        probes[pop.name] = {k: LoihiProbe(target=block, key=k) for k in ("spiked", "current", "voltage")}
        for probe in probes[pop.name].values():
            model.add_probe(probe)
    for pr in net.projections:
        mant = prepare_weights(np.asarray(pr.weight), pr.num_weight_bits, pr.sign_mode).astype(np.int32)
        chip = np.left_shift(shift(mant, int(pr.weight_exp)), 6)  # discretize_weights' chip shift
        syn = Synapse(mant.shape[1], label=pr.name)
        syn.set_weights(np.zeros(mant.shape[::-1]))
        for a, w in enumerate(syn.weights):
            _to_int(w, chip[:, a][None, :])
        blocks[pr.dst].add_synapse(syn)
        axon = Axon(mant.shape[1])
        axon.target = syn
        if pr.src in net.inputs:
            inp.add_axon(axon)
        else:
            blocks[pr.src].add_axon(axon)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Emulator(model, seed=0) as emu:
            emu.run_steps(steps)
            for name, pp in probes.items():
                got = {k: np.asarray(emu.collect_probe_output(pr)) for k, pr in pp.items()}
                out[name] = {"spikes": got["spiked"] != 0, "u": got["current"], "v": got["voltage"]}
    return out
