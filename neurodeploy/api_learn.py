"""``neurodeploy.learn``: train a network on a chip model with a local learning rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError


def learn(
    rule: Any,
    profile: str | None = None,
    task_or_data: str | Sequence[np.ndarray] = "yinyang",
    hidden: Sequence[int] | int = (64,),
    network: Any = None,
    backend: str = "emulator",
    mismatch: float = 0.0,
    seeds: int = 1,
    epochs: int = 40,
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
    or a user-defined ``neurodeploy.rules.LocalRule``.
    """
    from neurodeploy.rules import CHIP_RULES, LocalRule

    if not isinstance(rule, (str, LocalRule)):
        raise NeurodeployError(
            f"rule must be a rule's name or a LocalRule, got {type(rule).__name__}",
            "rule",
            "e.g. rule='kp' or rule=LocalRule('my-kp', forward='dt = y0*d*y3 - y0*d*y2')",
        )

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
