"""neurodeploy: compile spiking networks onto neuromorphic chip models, emulate them, and measure the loss.

Public API (imported lazily so ``import neurodeploy`` stays fast)::

    graph = neurodeploy.from_torch(module, sample, framework="snntorch")
    compiled = neurodeploy.compile(graph, "loihi2")
    result = neurodeploy.run(compiled, spikes, backend="emulator")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from neurodeploy._version import __version__

_LAZY = {
    "from_torch": ("neurodeploy.frontends", "from_torch"),
    "load_nir": ("neurodeploy.nirio", "load_nir"),
    "compile": ("neurodeploy.api", "compile"),
    "load_compiled": ("neurodeploy.api", "load_compiled"),
    "CompiledNetwork": ("neurodeploy.compiler.compiled", "CompiledNetwork"),
    "run": ("neurodeploy.api", "run"),
    "export_nir": ("neurodeploy.export", "export_nir"),
    "learn": ("neurodeploy.api_learn", "learn"),
    "variability": ("neurodeploy.studies.variability", "variability"),
    "run_study": ("neurodeploy.studies.study", "run_study"),
    "RunResult": ("neurodeploy.runner", "RunResult"),
    "NeurodeployError": ("neurodeploy.errors", "NeurodeployError"),
    "profiles": ("neurodeploy.profiles", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
