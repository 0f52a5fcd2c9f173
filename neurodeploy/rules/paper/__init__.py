"""``variant="paper"``: each rule as its paper writes it, in float on the ``ideal`` profile.

``learn_paper`` trains a layered float network with one rule's published equations and returns the same
``LearnResult`` as the chip path, so the two variants sit side by side in a table. The rule modules:
``ann`` (FA, DFA, DRTP, sign symmetry, KP, WM, IA, BP, frozen), ``pal`` and ``sal``; ``conv`` trains FA and
DFA on a convolutional and on a recurrent layer (``learn_conv``, ``learn_recurrent``). Each trainer class
names its own options in a dataclass ``Options``; the shared ones are ``PaperConfig``'s.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.paper.base import PaperConfig

# rule -> "module:class" under neurodeploy.rules.paper
TRAINERS = {
    "frozen": "ann:FrozenTrainer",
    "bp": "ann:BPTrainer",
    "fa": "ann:FATrainer",
    "dfa": "ann:DFATrainer",
    "drtp": "ann:DRTPTrainer",
    "sign": "ann:SignTrainer",
    "kp": "ann:KPTrainer",
    "wm": "ann:WMTrainer",
    "ia": "ann:IATrainer",
    "pal": "pal:PALTrainer",
    "sal": "sal:SALTrainer",
}
PAPER_RULES = tuple(TRAINERS)


def trainer_class(rule: str) -> type:
    if rule not in TRAINERS:
        raise NeurodeployError(
            f"rule {rule!r} has no paper variant", "variant", f"paper variants: {', '.join(PAPER_RULES)}"
        )
    module, name = TRAINERS[rule].split(":")
    return getattr(importlib.import_module(f"neurodeploy.rules.paper.{module}"), name)


def _weights(network: Any) -> list[np.ndarray] | None:
    """The float weight of every layer of the user's layered network (the chip path's check)."""
    if network is None:
        return None
    from neurodeploy.compiler.ir import NetworkIR
    from neurodeploy.compiler.learning import layered
    from neurodeploy.compiler.normalize import normalize

    if isinstance(network, (str, Path)):
        from neurodeploy.nirio import load_nir

        network = load_nir(network)
    ir = network if isinstance(network, NetworkIR) else normalize(network)
    return [w for _, _, w in layered(ir)]


def learn_paper(
    rule: str,
    task_or_data: str | Sequence[np.ndarray] = "yinyang",
    *,
    network: Any = None,
    seeds: int = 5,
    mismatch: float = 0.0,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> Any:
    """Train with the paper variant of ``rule``; ``overrides`` are ``PaperConfig``'s fields and the rule's
    ``Options``. Returns a ``LearnResult`` whose ``differences_from_paper`` is empty and whose
    ``provenance`` says that everything ran as host floats."""
    from neurodeploy.learning.epochs import LearnResult, final_summary, train_epochs
    from neurodeploy.learning.tasks import get_task
    from neurodeploy.studies.chip_learning import data_task

    cls = trainer_class(rule)
    own = {f.name for f in fields(PaperConfig)}
    rule_fields = {f.name for f in fields(cls.Options)} if hasattr(cls, "Options") else set()
    unknown = set(overrides) - own - rule_fields
    if unknown:
        raise NeurodeployError(
            f"option {sorted(unknown)[0]!r} does not apply to the paper variant of {rule!r}",
            "learn()",
            f"its options: {', '.join(sorted((own | rule_fields) - {'rule'}))}",
        )
    task = get_task(task_or_data) if isinstance(task_or_data, str) else data_task(task_or_data)
    name = task_or_data if isinstance(task_or_data, str) else "data"
    shared = {k: v for k, v in overrides.items() if k in own}
    cfg = PaperConfig(rule=rule, task=name, seeds=seeds, mismatch=mismatch, **shared).checked()
    opts = cls.Options(**{k: v for k, v in overrides.items() if k in rule_fields}) if rule_fields else None
    trainer = cls(cfg, task, _weights(network), opts) if opts is not None else cls(cfg, task, _weights(network))
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends in one error (``evaluate``)
        history = train_epochs(trainer, task, cfg.epochs, cfg.lr, cfg.batch, len(task.x_train), 0.25, progress)
    config = {**asdict(cfg), **(asdict(opts) if opts is not None else {}), "profile": "ideal", "variant": "paper"}
    provenance = {
        "all": {
            "where": "host float64 (the paper's equations; no chip, no engine)",
            "how": (cls.__doc__ or "").strip().splitlines()[0],
            "host_ops_per_sample": None,
        }
    }
    return LearnResult(config, history, final_summary(task, history), {"equations": cls.EQUATIONS}, provenance,
                       time.perf_counter() - t0, "paper", [])  # fmt: skip


def __getattr__(name: str) -> Any:
    """``learn_conv`` and ``learn_recurrent`` (FA and DFA on conv and recurrent layers) import torch, so
    they load on first use."""
    if name in ("learn_conv", "learn_recurrent"):
        from neurodeploy.rules.paper import conv

        return getattr(conv, name)
    raise AttributeError(name)


__all__ = ["PAPER_RULES", "PaperConfig", "learn_conv", "learn_paper", "learn_recurrent", "trainer_class"]
