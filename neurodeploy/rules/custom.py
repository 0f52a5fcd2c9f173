"""User-defined local rules: a new credit-assignment rule in a few lines, from the local terms of a synapse.

A rule is written either as learning-engine strings (the engine's own sum-of-products syntax) or as a
Python function over named local signals. Both describe the change of one synapse at its post neuron's
bAP, in units of the run's learning step η/active, from what that synapse can see:

=============== =========================== ===============================================
signal          engine symbol, forward W    engine symbol, feedback B (``source="chain"``)
=============== =========================== ===============================================
pre_trace       ``d`` (pre spikes counted)  ``(x1 - 64)`` (the upper δ as a graded spike)
post_trace      ``y1`` (post spike count)   ``y1`` (the lower neuron's spike count)
third_factor    ``y2 - y3`` (post δ)        not delivered to feedback synapses
weight          ``w``                       ``w``
tag             ``t``                       ``t``
=============== =========================== ===============================================

Every product is gated by ``y0`` (the bAP). The compiler (``compiler.learning_custom``) refuses
anything else (another synapse's weight, a transpose, a global loss, an unknown name) and anything the
profile's engine cannot express, and owns the tag's move into the weight once per minibatch.

Example, Kolen-Pollack written by hand::

    kp = LocalRule("my-kp", forward="dt = y0*d*y3 - y0*d*y2", feedback="dt = -y0*(x1-64)*y1")
    neurodeploy.learn(kp, "loihi2", "yinyang", hidden=[32], epochs=3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.alignment import RULES, RuleMotif

RuleBody = str | Callable[..., Any]
MAX_RULE_FILE = 64 * 1024  # bytes

# the signals a function form may declare, and what each is on the chip
LOCAL_SIGNALS: dict[str, str] = {
    "pre_trace": "the pre neuron's activity seen at this synapse: its spike count in the presentation "
    "(forward W) or the upper layer's δ as a graded spike (feedback B)",
    "post_trace": "the post neuron's spike count in the presentation",
    "third_factor": "the post neuron's learning signal δ, delivered by the motif to its error compartment "
    "(forward W only)",
    "weight": "this synapse's weight",
    "tag": "this synapse's tag (the update accumulated since the last weight move)",
}
SOURCES = ("chain", "error", "target", "none")


@dataclass(frozen=True)
class LocalRule:
    """A user-defined local rule: pass it as ``rule=`` to ``neurodeploy.learn``.

    ``forward``: the update of every forward weight W (and bias synapse); ``feedback``: the update of the
    feedback weights B (plastic B needs ``source="chain"``), None for fixed random B. ``source``: where a
    hidden layer's δ comes from, as for the built-in rules: "chain" (the layer above through B), "error"
    (the output δ broadcast), "target" (−y* broadcast) or "none" (only the output layer learns).
    A string is one or more statements ``dt = ...`` or ``dw = ...`` (``;`` or newlines between them);
    both accumulate in the tag and move into the weight once per minibatch. A function names its inputs
    from ``LOCAL_SIGNALS`` and returns the update.
    """

    name: str
    forward: RuleBody
    feedback: RuleBody | None = None
    source: str = "chain"
    summary: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise NeurodeployError("a local rule needs a name", "LocalRule.name", "e.g. LocalRule('my-kp', ...)")
        if self.name in RULES or self.name == "eprop":
            raise NeurodeployError(
                f"rule name {self.name!r} is a built-in rule", "LocalRule.name", "choose another name, e.g. 'my-kp'"
            )
        if self.source not in SOURCES:
            raise NeurodeployError(
                f"unknown source {self.source!r}", f"rule {self.name!r}: source", f"use one of {', '.join(SOURCES)}"
            )
        for part, body in (("forward", self.forward), ("feedback", self.feedback)):
            if body is None and part == "feedback":
                continue
            if not (isinstance(body, str) or callable(body)):
                raise NeurodeployError(
                    f"{part} must be a rule string or a function, got {type(body).__name__}",
                    f"rule {self.name!r}: {part}",
                    "e.g. forward='dt = y0*d*y3 - y0*d*y2'",
                )
        if self.feedback is not None and self.source != "chain":
            raise NeurodeployError(
                f"a plastic feedback rule needs source='chain', got {self.source!r}",
                f"rule {self.name!r}: feedback",
                "B learns from the relayed δ of the layer above; use source='chain' or feedback=None",
            )

    def motif(self) -> RuleMotif:
        """The network motif this rule adds (learning neurons, feedback B, plastic or fixed)."""
        return RuleMotif(
            self.name,
            self.summary or f"user-defined local rule ({self.source} feedback)",
            self.source,
            plastic_feedback=self.feedback is not None,
            chip_differences=(
                "a user-defined rule: the compiler translated its terms into the engine's products; each "
                "product's scale is realised on the engine's grid (m·2^e), reported as realised_lr",
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record of the rule (functions by name)."""

        def text(body: RuleBody | None) -> str | None:
            if body is None or isinstance(body, str):
                return body
            return f"python function {getattr(body, '__qualname__', repr(body))}"

        return {"name": self.name, "forward": text(self.forward), "feedback": text(self.feedback),
                "source": self.source, "summary": self.summary}  # fmt: skip


def load_rule(path: str | Path) -> LocalRule:
    """A rule from a TOML file with the keys of ``LocalRule`` (strings only): what ``neurodeploy learn
    --rule my-rule.toml`` reads."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE:  # a rule is a few lines: refuse before reading a stray large file
            raise NeurodeployError(
                f"rule file {path.name} is {size} bytes; a rule file is a few lines of TOML",
                str(path),
                "pass the .toml file that holds the rule's name, forward and feedback strings",
            )
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise NeurodeployError(f"cannot read rule file {path}: {err}", str(path), "write TOML: name, forward") from None
    keys = {"name", "forward", "feedback", "source", "summary"}
    bad = sorted(set(data) - keys) + sorted(k for k, v in data.items() if not isinstance(v, str))
    if bad or "forward" not in data:
        raise NeurodeployError(
            f"rule file {path.name}: {'unknown or non-string key ' + repr(bad[0]) if bad else 'no forward rule'}",
            str(path),
            'string keys name, forward (required), feedback, source, summary, e.g. forward = "dt = y0*d*y3 - y0*d*y2"',
        )
    return LocalRule(**{"name": path.stem, **data})


def local_rule(
    name: str,
    forward: RuleBody,
    feedback: RuleBody | None = None,
    source: str = "chain",
    summary: str = "",
) -> LocalRule:
    """``LocalRule(...)`` as a function, for symmetry with ``neurodeploy.learn``'s keyword style."""
    return LocalRule(name, forward, feedback, source, summary)


__all__ = ["LOCAL_SIGNALS", "LocalRule", "load_rule", "local_rule"]
