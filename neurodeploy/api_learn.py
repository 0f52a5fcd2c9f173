"""``neurodeploy.learn``: train a network on a chip model with a local learning rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError, check_seed


def learn(
    rule: Any,
    profile: str | None = None,
    task_or_data: str | Sequence[np.ndarray] | None = None,
    hidden: Sequence[int] | int | None = None,
    network: Any = None,
    backend: str = "emulator",
    mismatch: float = 0.0,
    seeds: int = 1,
    epochs: int | None = None,
    variant: str = "chip",
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **options: Any,
) -> Any:
    """Train with ``rule`` on ``profile``; returns a result with ``.final``, ``.history`` and ``.provenance``.

    ``variant``: "chip" (default) runs the rule's chip adaptation on ``profile`` (default loihi2); "paper"
    runs the published equations in float on the ``ideal`` profile (``neurodeploy.rules.paper``), whose
    options are ``PaperConfig``'s and the rule's ``Options``.
    ``task_or_data``: a built-in task ("yinyang", "digits", "teacher") or the arrays ``(x_train, y_train,
    x_test, y_test)``, x shaped (samples, features), integer labels; features are scaled into [0, 1] and
    rate coded like the built-in tasks. ``network``: a NIR graph, a path to a NIR file or a NetworkIR (a
    layered feed-forward chain), trained from its own weights; without it a network of ``hidden`` sizes is
    built. ``options`` are those of ``ChipLearnConfig`` (``EpropConfig`` for e-prop). ``rule``: a rule's name
    or a user-defined ``neurodeploy.rules.LocalRule``, or a learning system's name
    (``neurodeploy.rules.systems.SYSTEMS``: gle, microcircuit, sampling, ar, pc, di), which runs on its own
    task and network unless ``task_or_data`` names a built-in task; its ``options`` are the system's.
    Defaults: task "yinyang", hidden (64,), 40 epochs (a system: its own task and epochs).
    """
    from neurodeploy.rules import CHIP_RULES, LocalRule
    from neurodeploy.rules.systems import SYSTEMS

    if not isinstance(rule, (str, LocalRule)):
        raise NeurodeployError(
            f"rule must be a rule's name or a LocalRule, got {type(rule).__name__}",
            "rule",
            "e.g. rule='kp' or rule=LocalRule('my-kp', forward='dt = y0*d*y3 - y0*d*y2')",
        )

    if "seed" in options:
        options["seed"] = check_seed(options["seed"])
    if isinstance(rule, str) and rule in SYSTEMS:
        return _learn_system(rule, profile, task_or_data, hidden, network, backend, mismatch, seeds, epochs,
                             variant, progress, options)  # fmt: skip
    task_or_data = "yinyang" if task_or_data is None else task_or_data
    hidden = (64,) if hidden is None else hidden
    epochs = 40 if epochs is None else epochs
    if backend != "emulator":
        raise NeurodeployError(
            f"learning runs on backend {backend!r} are not available yet",
            "backend",
            "use backend='emulator'; the Lava backend runs inference (neurodeploy run --backend lava)",
        )
    if variant not in ("chip", "paper"):
        raise NeurodeployError(f"unknown variant {variant!r}", "variant", "use 'chip' or 'paper'")
    sizes = (int(hidden),) if isinstance(hidden, (int, np.integer)) else tuple(int(h) for h in hidden)
    if not sizes or min(sizes) < 1:
        raise NeurodeployError(f"hidden sizes must be positive, got {list(sizes)}", "hidden", "e.g. hidden=[64, 64]")
    if variant == "paper":
        if profile not in (None, "ideal"):
            raise NeurodeployError(
                f"the paper variant runs the published equations in float on the ideal profile, not {profile!r}",
                "profile",
                f"drop the profile or use the ideal profile; the chip variant runs the rule on {profile!r}",
            )
        if not isinstance(rule, str):
            raise NeurodeployError(
                f"a user-defined rule ({rule.name!r}) has no published equations", "variant", "use variant='chip'"
            )
        from neurodeploy.rules.paper import learn_paper

        return learn_paper(rule, task_or_data, network=network, seeds=seeds, mismatch=mismatch, progress=progress,
                           epochs=epochs, hidden=sizes, **options)  # fmt: skip
    profile = profile or "loihi2"
    if rule == "eprop":
        if network is not None or not isinstance(task_or_data, str):
            raise NeurodeployError(
                "e-prop trains its own recurrent network on built-in tasks only",
                "rule",
                f"rules that train your own network and data on the chip: {', '.join(CHIP_RULES)}",
            )
        if variant != "chip":
            raise NeurodeployError("e-prop has no paper variant yet", "variant", "use variant='chip'")
        from neurodeploy.learning.eprop import learn_eprop

        if len(sizes) != 1:
            raise NeurodeployError(
                f"e-prop trains one recurrent hidden layer, got {len(sizes)}", "hidden", "e.g. hidden=[64]"
            )
        return learn_eprop(profile=profile, task=task_or_data, mismatch=mismatch, seeds=seeds, progress=progress,
                           epochs=epochs, hidden=sizes[0], **options)  # fmt: skip
    if isinstance(rule, str) and rule not in CHIP_RULES:
        raise NeurodeployError(f"unknown rule {rule!r}", "rule", f"rules: {', '.join(CHIP_RULES)}, eprop")
    from neurodeploy.studies.chip_learning import learn_chip

    return learn_chip(rule, profile, task_or_data, network=network, mismatch=mismatch, seeds=seeds,
                      progress=progress, epochs=epochs, hidden=sizes, variant=variant, **options)  # fmt: skip


def _learn_system(
    name: str,
    profile: str | None,
    task: Any,
    hidden: Any,
    network: Any,
    backend: str,
    mismatch: float,
    seeds: int,
    epochs: int | None,
    variant: str,
    progress: Any,
    options: dict[str, Any],
) -> Any:
    """A learning system (``neurodeploy.rules.systems``): each builds its own network, so a user's network
    and another backend are refused by name rather than ignored; ``hidden`` sets the system's own layer
    sizes (DI: its one hidden width)."""
    from neurodeploy.rules.systems import learn_system

    refused = (
        (network, "network", "builds its own network"),
        (None if backend == "emulator" else backend, "backend", "runs on the emulator"),
    )
    for given, arg, why in refused:
        if given is not None:
            raise NeurodeployError(
                f"the learning system {name!r} {why}; {arg}= does not apply",
                arg,
                f"drop {arg}=; docs/systems/ lists the options of each system",
            )
    if hidden is not None:
        options = {**options, **_system_hidden(name, hidden, options)}
    if task is not None and not isinstance(task, str):
        raise NeurodeployError(
            f"the learning system {name!r} runs on a built-in task, not on arrays",
            "task_or_data",
            "pass a task name such as 'digits', or None for its own task",
        )
    if mismatch:
        options = {**options, "mismatch": mismatch}
    return learn_system(
        name, task, variant=variant, profile=profile, seeds=seeds, epochs=epochs, progress=progress, **options
    )


def _system_hidden(name: str, hidden: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``hidden`` as the system's own option: ``hidden`` (a tuple of widths), or DI's ``n_hidden``."""
    if "hidden" in options or "n_hidden" in options:
        raise NeurodeployError(
            "the hidden sizes are given twice", "hidden", "give them once: hidden=... (--hidden) or the option"
        )
    try:
        sizes = (int(hidden),) if isinstance(hidden, (int, np.integer)) else tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise NeurodeployError(f"hidden must be layer widths, got {hidden!r}", "hidden", "e.g. hidden=[30]") from None
    if name != "di":
        return {"hidden": sizes}
    if len(sizes) != 1:
        raise NeurodeployError(
            f"dynamic inversion has one hidden layer, got {len(sizes)} widths",
            "hidden",
            "e.g. hidden=100 (--hidden 100)",
        )
    return {"n_hidden": sizes[0]}
