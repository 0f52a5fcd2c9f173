"""Feedback-alignment family as motifs: FA, DFA, DRTP, sign symmetry, Kolen-Pollack, the frozen-hidden
baseline and the backprop reference.

Each rule states where a hidden layer's learning signal comes from (``source``), whether its feedback
weights learn, and the differences between the published equations (``variant="paper"``, float) and
what the chip's engine runs (``variant="chip"``). Equations: Lillicrap et al. 2016 (FA), Nøkland 2016
(DFA), Frenkel et al. 2021 (DRTP), Liao et al. 2016 and Moskovitz et al. 2018 (sign symmetry), Akrout et
al. 2019 (KP), Rumelhart et al. 1986 (BP, whose B = Wᵀ is weight transport and so a host copy).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from neurodeploy.errors import NeurodeployError


@dataclass(frozen=True)
class RuleMotif:
    """What a rule adds to the network, and what differs between its paper and chip variants."""

    name: str
    summary: str
    source: str  # where a hidden layer's feedback comes from: "chain" (the layer above), "error", "target", "none"
    plastic_feedback: bool = False  # KP: B learns with the transpose of W's update
    decays: bool = False  # KP: W and B decay
    host_copy: str = ""  # "sign": B = s·sign(W)ᵀ; "transpose": B = Wᵀ (BP); rewritten after every weight move
    mirror: bool = False  # WM, IA: B learns from mirror presentations (``emulator.learning_mirror``)
    noise: bool = False  # PAL, SAL: noise populations drive the hidden layers while training (``learning_noise``)
    chip_differences: tuple[str, ...] = ()

    def provenance(self, numerics: str, profile: str) -> dict[str, dict[str, object]]:
        """Where each signal is computed: "chip" (neurons, synapses, engine of ``profile``) or "host"."""
        chip = "chip" if numerics == "loihi" else "chip (float model of the ideal profile)"

        def entry(how: str) -> dict[str, object]:
            return {"where": chip, "how": how, "host_ops_per_sample": 0}

        copy_how = {
            "sign": "after every weight move, B = s·sign(W)ᵀ with s the RMS of W's integers, written into the "
            "feedback synapses",
            "transpose": "after every weight move, B = Wᵀ copied into the feedback synapses (weight transport: "
            "the reference, not a local rule)",
        }
        if self.mirror:
            feedback = {
                "where": "chip + host (x86 or an embedded core)",
                "how": "mirror presentations on the chip (a noise population drives layer l, layer l+1 responds "
                "through W); the host correlates the spike counts and writes B",
                "host_ops_per_sample": None,  # filled in by the learning pass
            }
        elif self.noise:
            feedback = {
                "where": "chip + host (x86 or an embedded core)",
                "how": "noise populations drive every hidden layer while it trains; the host correlates the "
                "recorded spike trains per step (PAL: noise with the upper layer's high-passed activity; SAL: "
                "the spike-timing kernel) and writes B",
                "host_ops_per_sample": None,  # filled in by the learning pass
            }
        elif self.host_copy:
            feedback = {
                "where": "host (x86 or an embedded core)",
                "how": copy_how[self.host_copy],
                "host_ops_per_sample": None,  # filled in by the learning pass: per move / minibatch
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
            if self.host_copy or self.mirror or self.noise
            else entry(
                "engine rule on B: the transposed W update from B's own pre (graded δ) and post (spike count)"
                if self.plastic_feedback
                else "none: B is fixed"
            ),
            "weight_write": entry("engine rules: tag accumulates −η·δ·x̄ per presentation, moves every minibatch"),
        }


_GATE = "f′ is the chip's: 1 where the neuron fired in the presentation (bAP), 0 otherwise"
_DELTA = "δ is quantised to 7 bits (a third-factor trace) per layer; the output error is rate − target, not softmax"
_MIRROR = (
    "the mirror phase runs one hidden layer at a time after every minibatch with the forward projections' "
    "learning switched off; its noise is spikes at rate ρ per input step into layer l (not uniform noise on "
    "the activations); the correlation and the write of B run on the host, with stochastic rounding"
)
_NOISE = (
    "the noise is spikes at rate ρ per input step in two channels (±q thresholds) into the synaptic current "
    "of every hidden neuron, low-passed by the current (not the paper variant's Ornstein-Uhlenbeck process on the "
    "voltage), "
    "on while training and off for tests; the correlation and the write of B run on the host after every "
    "minibatch: running sums that decay by η_B per minibatch (the paper's −αB), B their ratio, written with "
    "stochastic rounding"
)
_SGD = "weights move once per minibatch through the synaptic tag (9 bits), with stochastic rounding"
_NET = (
    "the neurons are CUBA LIF spiking neurons rate-coded over a presentation (a rectified rate that saturates at "
    "one spike per step), not the paper variant's float rate neurons φ (tanh by default); the readout is the "
    "output layer's membrane, the optimiser plain SGD with the learning rate halved at 50 % and 75 % of the epochs"
)

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
        "sign", "sign symmetry (uSF): B = s·sign(W)ᵀ carries δ down layer by layer", "chain", host_copy="sign",
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
    "wm": RuleMotif(
        "wm", "weight mirror: B learns Wᵀ from noise-driven mirror presentations, with decay", "chain",
        mirror=True,
        chip_differences=(_GATE, _DELTA, _SGD, _MIRROR,
                          "ΔB = η_B (C/σ²_ξ − B): the Hebbian term normalised by the noise variance, decay rate η_B"),
    ),
    "ia": RuleMotif(
        "ia", "information alignment: WM plus a self-prediction term, B learns to invert the response", "chain",
        mirror=True,
        chip_differences=(_GATE, _DELTA, _SGD, _MIRROR,
                          "ΔB = η_B (C/σ²_ξ − B (R/σ²_r + γ I)): α = 1/σ²_ξ, 2β = 1/σ²_r, 2γ = 0.1·η_B"),
    ),
    "pal": RuleMotif(
        "pal", "phaseless alignment: B learns from private noise and the upper layer's high-passed response",
        "chain", noise=True,
        chip_differences=(_GATE, _DELTA, _SGD, _NOISE,
                          "C = Σ_t ξ̃ (r^HP)ᵀ with traces of τ_ξ and τ_HP steps settles at D Wᵀ (the paper's "
                          "fixed point); B = C / rms(D), D each neuron's measured response to its own noise, "
                          "instead of the paper's σ²/α scale"),
    ),
    "sal": RuleMotif(
        "sal", "spike-based alignment: an anti-symmetric spike-timing rule on B, with private noise", "chain",
        noise=True,
        chip_differences=(_GATE, _DELTA, _SGD, _NOISE,
                          "the kernel pairs lower spikes with the upper layer's activity (the output layer: its "
                          "input per step), τ steps, + causal / − anti-causal as seen from W; B does not act in "
                          "the forward dynamics, so the anti-causal half removes shared-input correlation only",
                          "C is normalised by the lower neuron's own spike count (a local gain); "
                          "the neurons are deterministic CUBA LIF driven by the noise, not escape-noise neurons"),
    ),
    "bp": RuleMotif(
        "bp", "backprop reference: B = Wᵀ, copied by the host after every weight move, carries δ down", "chain",
        host_copy="transpose",
        chip_differences=(_GATE, _DELTA, _SGD, "B is rewritten from W by the host after every weight move, not "
                          "after every update (between moves B lags W by at most one minibatch)"),
    ),
}  # fmt: skip

# every chip variant runs on the chip's neurons, which the paper variants do not model
RULES = {name: replace(mot, chip_differences=(_NET, *mot.chip_differences)) for name, mot in RULES.items()}
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
