"""Feedback-alignment family as motifs: FA, DFA, DRTP, Kolen-Pollack, and the frozen-hidden baseline.

Each rule states where a hidden layer's learning signal comes from (``source``), whether its feedback
weights learn, and the differences between the published equations (``variant="paper"``, float) and
what the chip's engine runs (``variant="chip"``). Equations: Lillicrap et al. 2016 (FA), Nøkland 2016
(DFA), Frenkel et al. 2021 (DRTP), Akrout et al. 2019 (KP); ``../facts/learning-rules.md`` §1.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurodeploy.errors import NeurodeployError


@dataclass(frozen=True)
class RuleMotif:
    """What a rule adds to the network, and what differs between its paper and chip variants."""

    name: str
    summary: str
    source: str  # where a hidden layer's feedback comes from: "chain" (the layer above), "error", "target", "none"
    plastic_feedback: bool = False  # KP: B learns with the transpose of W's update
    decays: bool = False  # KP: W and B decay
    sign_copy: bool = False  # sign symmetry: B = s·sign(W)ᵀ, rewritten from W after every weight move
    chip_differences: tuple[str, ...] = ()

    def provenance(self, numerics: str, profile: str) -> dict[str, dict[str, object]]:
        """Where each signal is computed: "chip" (neurons, synapses, engine of ``profile``) or "host"."""
        chip = "chip" if numerics == "loihi" else "chip (float model of the ideal profile)"

        def entry(how: str) -> dict[str, object]:
            return {"where": chip, "how": how, "host_ops_per_sample": 0}

        if self.sign_copy:
            feedback = {
                "where": "host (x86 or an embedded core)",
                "how": "after every weight move, B = s·sign(W)ᵀ with s the RMS of W's integers, written into the "
                "feedback synapses",
                "host_ops_per_sample": None,  # filled in by the learning pass: 3·|W| per move / minibatch
            }
        hidden = {
            "chain": "error compartments sum graded δ of the layer above through feedback synapses B",
            "error": "error compartments sum the output δ, broadcast through feedback synapses B",
            "target": "error compartments sum the target (−y*), broadcast through feedback synapses B",
            "none": "no hidden learning signal (hidden weights stay fixed)",
        }[self.source]
        return {
            "forward": entry(f"CUBA LIF neurons and dense synapses on {profile}"),
            "output_error": entry("output neurons' error compartments: own membrane minus target spikes"),
            "hidden_signal": entry(hidden),
            "feedback_learning": feedback
            if self.sign_copy
            else entry(
                "engine rule on B: the transposed W update from B's own pre (graded δ) and post (spike count)"
                if self.plastic_feedback
                else "none: B is fixed"
            ),
            "weight_write": entry("engine rules: tag accumulates −η·δ·x̄ per presentation, moves every minibatch"),
        }


_GATE = "f′ is the chip's: 1 where the neuron fired in the presentation (bAP), 0 otherwise"
_DELTA = "δ is quantised to 7 bits (a third-factor trace) per layer; the output error is rate − target, not softmax"
_SGD = "weights move once per minibatch through the synaptic tag (9 bits), with stochastic rounding"

RULES: dict[str, RuleMotif] = {
    "frozen": RuleMotif("frozen", "only the output layer learns (baseline)", "none", chip_differences=(_DELTA, _SGD)),
    "fa": RuleMotif(
        "fa", "feedback alignment: fixed random B carries δ down layer by layer", "chain",
        chip_differences=(_GATE, _DELTA, _SGD, "B is 8-bit, drawn once"),
    ),
    "dfa": RuleMotif(
        "dfa", "direct feedback alignment: the output δ broadcast to every layer through fixed B", "error",
        chip_differences=(_GATE, _DELTA, _SGD, "B is 8-bit, drawn once"),
    ),
    "drtp": RuleMotif(
        "drtp", "direct random target projection: −y* through fixed B to every layer", "target",
        chip_differences=(_GATE, _DELTA, _SGD, "B is 8-bit, drawn once"),
    ),
    "sign": RuleMotif(
        "sign", "sign symmetry (uSF): B = s·sign(W)ᵀ carries δ down layer by layer", "chain", sign_copy=True,
        chip_differences=(_GATE, _DELTA, _SGD, "B is rewritten from W's signs by the host after every weight move, "
                          "not after every update; s is the RMS of W's integers, rounded"),
    ),
    "kp": RuleMotif(
        "kp", "Kolen-Pollack: B learns W's update transposed; both decay", "chain", True, True,
        chip_differences=(
            _GATE, _DELTA, _SGD,
            "decay is off by default (as in the reference code); when set, λ is realised on the engine's grid "
            "(at least 2^-(7 + tag_bits) per move), reported as realised_decay",
            "B reads the upper δ as a signed graded spike (pre trace 64 + δ, so |δ| ≤ 63)",
        ),
    ),
}  # fmt: skip

CHIP_RULES = tuple(RULES)


def motif(rule: str) -> RuleMotif:
    """The motif of ``rule``, or one clear error naming the rules that run on the chip path."""
    if rule not in RULES:
        raise NeurodeployError(
            f"rule {rule!r} has no chip motif yet",
            "rule",
            f"chip rules: {', '.join(CHIP_RULES)}",
        )
    return RULES[rule]
