"""Device mismatch: sample chip instances of a compiled network from its profile's ``[mismatch]`` section.

Analog chips (DYNAP-SE2, BrainScaleS-2) differ from die to die and circuit to circuit; a network that
works on the nominal model may fail on a share of real chips. ``sample`` draws ``instances`` perturbed
copies of a float ``CoreNetwork`` at once: per-neuron parameters become ``(instances, 1, n)`` and perturbed
weights ``(instances, n_dst, n_src)``, which the emulator runs as extra batch axes in one pass.

Profile names map onto float core parameters:

- ``tau_mem`` / ``tau_syn``: the decays ``dv`` / ``du``. With d = dt/tau, tau·f gives d/f. A decay of 0
  (no leak) or >= 1 (no state kept) has no time constant to mismatch and stays as it is.
- ``v_threshold``: ``v_th``; ``bias``: ``bias_u`` and ``bias_v``; ``weight``: every projection's weights.

A component ``{sigma, distribution, scope}`` gives a factor f per element: "normal" f = 1 + sigma·e with e
clipped to [-3, 3], and f >= ``FLOOR`` so that time constants, thresholds and weight magnitudes keep their
sign; "lognormal" f = exp(sigma·e). Scope "synapse" draws per weight (per neuron for neuron parameters),
"neuron" per neuron (per destination neuron for weights), "core" once per core of the placement, shared
by every neuron placed there (weights: by the destination neuron's core). A parameter may have several
components (the profile's one plus user ``name@scope`` keys); their factors multiply.

Temporal noise: ``v_noise`` is not a fixed pattern but Gaussian noise added to every spiking neuron's
membrane at every step, with standard deviation sigma times the neuron's nominal threshold (scope
"neuron", distribution "normal"; several components add in variance). ``sample`` stores it as the
parameters ``v_noise`` and ``noise_stream`` that ``floatcore.FloatCubaState`` draws from while it runs.

Reproducibility: instance k's draws for one (parameter, scope) come from ``default_rng([seed, k, id])``
only, so instance k sampled alone equals instance k of any batch, and changing one sigma never changes
the draws of another parameter (a sigma sweep reuses the same e: common random numbers). Temporal noise
follows the same rule: instance k's noise in population p comes from ``default_rng([seed, k, id(p)])``.
"""

from __future__ import annotations

import copy
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation
from neurodeploy.errors import NeurodeployError

PARAMETERS = ("tau_mem", "tau_syn", "v_threshold", "bias", "weight", "v_noise")
TEMPORAL = ("v_noise",)  # drawn afresh every step while the network runs, not once per instance
SCOPES = ("synapse", "neuron", "core")
FLOOR = 1e-3  # smallest "normal" factor: keeps tau, thresholds and weight magnitudes positive
_NEURON_PARAMS = {"tau_mem": ("dv",), "tau_syn": ("du",), "v_threshold": ("v_th",), "bias": ("bias_u", "bias_v")}
_DECAYS = ("du", "dv")

Spec = dict[str, list[dict[str, Any]]]


def mismatch_spec(profile: Any, sigma: Mapping[str, float] | None = None) -> Spec:
    """The components per parameter: the profile's ``[mismatch]`` with the user's sigmas applied.

    ``sigma`` keys are a parameter name (sets sigma of all its components, or adds a "normal" one at
    its natural scope) or ``name@scope`` (sets or adds the component at that scope). Profile entries
    with other names are not modelled by the float core and are left out.
    """
    raw = dict(getattr(profile, "mismatch", {}) or {})
    spec: Spec = {name: [dict(raw[name])] for name in PARAMETERS if name in raw}
    for key, value in (sigma or {}).items():
        name, _, scope = str(key).partition("@")
        if name not in PARAMETERS:
            raise NeurodeployError(
                f"unknown mismatch parameter {name!r}",
                f"sigma {key!r}",
                f"choose from {', '.join(PARAMETERS)}, optionally with @scope",
            )
        if scope and scope not in SCOPES:
            raise NeurodeployError(
                f"unknown mismatch scope {scope!r}", f"sigma {key!r}", f"choose from {', '.join(SCOPES)}"
            )
        try:
            s = float(value)
        except (TypeError, ValueError):
            s = math.nan
        if not (math.isfinite(s) and 0 <= s < 10):
            raise NeurodeployError(
                f"sigma must be a relative deviation >= 0, got {value!r}",
                f"sigma {key!r}",
                "write e.g. weight=0.1 for 10 %",
            )
        comps = spec.setdefault(name, [])
        matching = [c for c in comps if not scope or c["scope"] == scope]
        if matching:
            for c in matching:
                c["sigma"] = s
        else:
            natural = "synapse" if name == "weight" else "neuron"
            comps.append({"sigma": s, "distribution": "normal", "scope": scope or natural})
    for name in TEMPORAL:
        for comp in spec.get(name, []):
            if comp["scope"] != "neuron" or comp.get("distribution", "normal") != "normal":
                raise NeurodeployError(
                    f"temporal noise is normal and drawn per neuron and step, got a {comp.get('distribution')!r} "
                    f"component at scope {comp['scope']!r}",
                    f"mismatch {name}",
                    f'write {name} = {{ sigma = 0.02, distribution = "normal", scope = "neuron", ... }}',
                )
    return {name: comps for name, comps in spec.items() if comps}


def scale_spec(spec: Spec, factor: float) -> Spec:
    """The spec with every sigma multiplied by ``factor`` (for sweeps)."""
    return {n: [{**c, "sigma": c["sigma"] * factor} for c in comps] for n, comps in spec.items()}


def is_zero(spec: Spec) -> bool:
    return all(c["sigma"] == 0 for comps in spec.values() for c in comps)


def core_map(net: CoreNetwork, placement: Any = None) -> dict[str, np.ndarray]:
    """Core index per neuron of every population; without a placement each population is its own core."""
    out: dict[str, np.ndarray] = {}
    for i, pop in enumerate(net.populations):
        out[pop.name] = np.full(pop.size, -1 - i, dtype=np.int64)
    for block in getattr(placement, "blocks", None) or []:
        if block.population in out:
            out[block.population][block.start : block.stop] = block.core
    return out


def sample(
    compiled_or_core: Any,
    profile: Any = None,
    instances: int = 1,
    seed: int = 0,
    sigma: Mapping[str, float] | None = None,
    placement: Any = None,
    *,
    first: int = 0,
) -> CoreNetwork:
    """Instances ``first .. first + instances - 1`` of the network as one CoreNetwork with instance axes.

    ``compiled_or_core``: a CompiledNetwork (its profile and placement are the defaults) or a
    CoreNetwork (then pass ``profile``; ``placement`` is needed for core-scope draws). With every
    sigma 0 the values are exactly the nominal ones.
    """
    core = getattr(compiled_or_core, "core", compiled_or_core)
    if not isinstance(core, CoreNetwork):
        raise NeurodeployError(
            "mismatch sampling needs a compiled network or a CoreNetwork",
            "sample",
            "call neurodeploy.compile(graph, profile) first",
        )
    profile = profile if profile is not None else getattr(compiled_or_core, "profile", None)
    placement = placement if placement is not None else getattr(compiled_or_core, "placement", None)
    if isinstance(instances, bool) or not isinstance(instances, (int, np.integer)) or instances < 1:
        raise NeurodeployError(
            f"instances must be a positive integer, got {instances!r}", "instances", "pass e.g. instances=64"
        )
    spec = mismatch_spec(profile, sigma)
    zero = is_zero(spec)
    if core.numerics not in ("float", "loihi") and not zero:
        raise NeurodeployError(
            f"mismatch on {core.numerics} numerics is not modelled",
            f"numerics {core.numerics}",
            "leave sigma at 0, or compile for a Loihi or float-core profile",
        )
    ids = range(int(first), int(first) + int(instances))
    cores = core_map(core, placement)
    factors = {
        name: _factors(core, name, comps, cores, seed, ids) for name, comps in spec.items() if name not in TEMPORAL
    }
    noise = math.sqrt(sum(c["sigma"] ** 2 for name in TEMPORAL for c in spec.get(name, [])))
    if core.numerics == "loihi" and noise > 0:
        raise NeurodeployError(
            "temporal membrane noise (v_noise) is modelled on float cores only",
            "sigma v_noise",
            "leave v_noise at 0 on Loihi, or compile for an analog profile such as dynapse2",
        )
    if core.numerics == "loihi":  # user-set sigmas on a digital chip, rounded to its registers
        from neurodeploy.emulator.mismatch_loihi import loihi_instances

        return loihi_instances(core, factors, int(instances))

    pops: list[CorePopulation] = []
    for pop in core.populations:
        new = copy.copy(pop)
        if pop.model != "input":
            new.params = {}
            for key, value in pop.params.items():
                nominal = np.broadcast_to(np.asarray(value), (pop.size,))
                arr = np.repeat(nominal[None, None, :], instances, axis=0)
                for name, keys in _NEURON_PARAMS.items():
                    if key in keys and pop.name in factors.get(name, {}):
                        arr = _apply(arr, factors[name][pop.name], decay=key in _DECAYS)
                new.params[key] = arr
            if noise > 0 and pop.spiking:
                new.params.update(_temporal_noise(pop, noise, seed, ids))
        pops.append(new)
    projs = []
    for pr in core.projections:
        new_pr = copy.copy(pr)
        f = factors.get("weight", {}).get(pr.name)
        if f is not None:
            w = pr.weight.toarray() if hasattr(pr.weight, "toarray") else np.asarray(pr.weight, dtype=float)
            new_pr.weight = w[None] * f
        projs.append(new_pr)
    return CoreNetwork(
        pops, projs, list(core.inputs), list(core.outputs), core.numerics, list(core.readouts), core.arithmetic
    )


def _apply(arr: np.ndarray, f: np.ndarray, decay: bool) -> np.ndarray:
    """Scale a parameter by f (decays: divide, keeping 0 and >= 1 as they are, never above 1)."""
    arr = arr.astype(float)
    if not decay:
        with np.errstate(invalid="ignore"):  # inf thresholds stay inf
            return np.where(np.isfinite(arr), arr * f, arr)
    fixed = (arr <= 0) | (arr >= 1)
    return np.where(fixed, arr, np.minimum(arr / f, 1.0))


def _temporal_noise(pop: CorePopulation, sigma: float, seed: int, ids: range) -> dict[str, np.ndarray]:
    """``v_noise`` (sigma times the nominal threshold; 0 where the threshold is infinite) and the stream words."""
    v_th = np.broadcast_to(np.asarray(pop.params.get("v_th", np.inf), dtype=float), (pop.size,))
    std = np.where(np.isfinite(v_th), sigma * np.abs(v_th), 0.0)
    words = [[int(seed), int(k), zlib.crc32(f"v_noise@{pop.name}".encode())] for k in ids]
    return {
        "v_noise": np.repeat(std[None, None, :], len(ids), axis=0),
        "noise_stream": np.asarray(words, dtype=np.int64)[:, None, :],
    }


def _stream(seed: int, k: int, name: str, scope: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(k), zlib.crc32(f"{name}@{scope}".encode())])


def _factor(eps: np.ndarray, comp: dict[str, Any]) -> np.ndarray:
    s = float(comp["sigma"])
    if comp.get("distribution", "normal") == "lognormal":
        return np.exp(s * eps)
    return np.maximum(1.0 + s * np.clip(eps, -3.0, 3.0), FLOOR)


def _factors(
    core: CoreNetwork, name: str, comps: list[dict[str, Any]], cores: dict[str, np.ndarray], seed: int, ids: range
) -> dict[str, np.ndarray]:
    """Factor arrays per population (neuron params: (I, 1, n)) or projection (weights: (I, n_dst, n_src)).

    Components with sigma 0 draw nothing; with none left the parameter is not touched at all.
    """
    live = [c for c in comps if c["sigma"] > 0]
    if not live:
        return {}
    pops = [p for p in core.populations if p.model != "input"]
    sizes = {p.name: p.size for p in core.populations}
    out: dict[str, np.ndarray] = {}
    for comp in live:
        scope = comp["scope"]
        per_k = []
        for k in ids:
            rng = _stream(seed, k, name, scope)
            if scope == "core":
                all_ids = np.concatenate([cores[p.name] for p in core.populations])
                lo = int(all_ids.min())
                draws = rng.standard_normal(int(all_ids.max()) - lo + 1)  # one per core index
                per_pop = {n: draws[c - lo] for n, c in cores.items()}
            elif name == "weight" and scope == "synapse":
                per_pop = {}
            else:
                per_pop = {p.name: rng.standard_normal(p.size) for p in pops}
            if name != "weight":
                per_k.append({p.name: per_pop[p.name][None, :] for p in pops})
                continue
            item = {}
            for pr in core.projections:
                shape = (sizes[pr.dst], sizes[pr.src])
                item[pr.name] = (
                    rng.standard_normal(shape)
                    if scope == "synapse"
                    else np.broadcast_to(per_pop[pr.dst][:, None], shape)
                )
            per_k.append(item)
        for key in per_k[0] if per_k else []:
            f = _factor(np.stack([d[key] for d in per_k]), comp)
            out[key] = out[key] * f if key in out else f
    return out
