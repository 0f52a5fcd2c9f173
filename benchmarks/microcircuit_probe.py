"""Per-seed series, paired gaps and the chip rows' probe for ``microcircuit_pal_fa.py``: how much of the third
factors' range the chip's rules use, how often the tags saturate, and the text on what separates chip and float."""

from __future__ import annotations

from typing import Any

import numpy as np

RULE_NAMES = {"w0": "W (hidden)", "w1": "W (output)", "b0": "B", "ip0": "W_IP", "pi0": "W_PI"}


def series(res: Any, key: str) -> np.ndarray:
    """(epochs, seeds) of one per-seed series; ``weight_angle`` reads its hidden layer."""
    rows = [h[key]["hidden"] if key == "weight_angle" else h[key] for h in res.history]
    return np.asarray(rows, dtype=float)


def cell(values: np.ndarray) -> str:
    return f"{values.mean():.1f} ± {values.std():.1f}"


def last_epochs(res: Any) -> tuple[int, np.ndarray]:
    """The number of final epochs averaged, and each seed's mean test accuracy % over them."""
    k = min(5, len(res.history))
    return k, 100 * series(res, "test_accuracy")[-k:].mean(0)


def paired(better: Any, worse: Any, key: str = "test_accuracy") -> tuple[int, np.ndarray, float]:
    """Per-seed differences of the last epochs' mean (test accuracy in points, or the final angle), the runs
    sharing each seed's start, and their standard error."""
    if key == "weight_angle":
        k, diff = 1, series(better, key)[-1] - series(worse, key)[-1]
    else:
        k, a = last_epochs(better)
        diff = a - last_epochs(worse)[1]
    sem = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return k, diff, sem


def gap(better: Any, worse: Any, key: str = "test_accuracy") -> str:
    _, diff, sem = paired(better, worse, key)
    unit = "°" if key == "weight_angle" else " points"
    return f"{diff.mean():+.1f} ± {sem:.1f}{unit} ({int((diff > 0).sum())} of {len(diff)} seeds above 0)"


class ChipProbe:
    """Looks inside one chip run: per rule the share of third-factor values with |y′| ≥ 1 and at the ±15 clip and
    the mean |y′|; at the end, per projection the share of tag updates that saturated (the accumulator's or
    the tag's range) and of weight registers at the 9-bit clip."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], np.ndarray] = {}
        self.nets: list[Any] = []

    def __enter__(self) -> ChipProbe:
        from neurodeploy.rules.systems import microcircuit_chip as chip

        self.chip = chip
        self.saved = (chip.third_factor, chip.ChipMicrocircuit.__init__)
        third_factor, init = self.saved
        probe = self

        def counted(value: np.ndarray, gain: tuple[int, int], uniform_bits: np.ndarray) -> np.ndarray:
            t = np.abs(np.asarray(value, dtype=np.int64) * gain[0])
            c = probe.counts.setdefault(gain, np.zeros(4))
            c += (t.size, np.count_nonzero(t < (1 << gain[1])), np.count_nonzero(t >= (chip.Y_MAX << gain[1])),
                  float(np.minimum(t / 2.0 ** gain[1], chip.Y_MAX).sum()))  # fmt: skip
            return third_factor(value, gain, uniform_bits)

        def captured(net: Any, *a: Any, **kw: Any) -> None:
            init(net, *a, **kw)
            probe.nets.append(net)

        chip.third_factor, chip.ChipMicrocircuit.__init__ = counted, captured
        return self

    def __exit__(self, *exc: Any) -> None:
        self.chip.third_factor, self.chip.ChipMicrocircuit.__init__ = self.saved

    def usage(self) -> dict[str, dict[str, Any]]:
        """Per projection: share of third-factor values with |y′| < 1, share at the clip, mean |y′|, whether it
        learns through the tag, the share of tag updates saturated, and of weight registers at the clip after the
        run; PAL's mean decay per step on chip and in float."""
        net = self.nets[-1]
        out: dict[str, dict[str, Any]] = {}
        for name, pl in net.plastic.items():
            if pl.rule is None or pl.gain not in self.counts:
                continue
            n, below, clipped, total = self.counts[pl.gain]
            at_clip = float(((pl.weights >= 255) | (pl.weights <= -256)).mean())
            out[name] = {"below_1": below / n, "clipped": clipped / n, "mean": total / n, "w_clip": at_clip,
                         "tag": pl.tag is not None, "tag_sat": pl.saturated / max(pl.updates, 1),
                         "tag_sat_count": pl.saturated}  # fmt: skip
        # PAL's −αB: y1 = 32 with probability threshold / 2^16 per pattern and step removes (w + t/128)/128 (a
        # batch of patterns side by side); the float removes η_bw·dt·α·batch of B per step
        o = net.o
        out["decay"] = {
            "chip": net.decay_threshold / 2**16 * o.batch / 128,
            "float": o.lr_bw * o.dt * o.alpha * o.batch,
        }
        return out


def chip_table(rows: list[tuple[str, str, Any]], epochs: int) -> str:
    k = min(5, epochs)
    lines = [f"| run | where | test % at epoch {epochs} | test %, mean of epochs {epochs - k + 1}–{epochs} | "
             f"∠(B, Wᵀ) ° at epoch {epochs} |", "|---|---|---|---|---|"]  # fmt: skip
    for name, where, res in rows:
        acc = 100 * series(res, "test_accuracy")
        lines.append(f"| {name} | {where} | {cell(acc[-1])} | {cell(acc[-k:].mean(0))} | "
                     f"{cell(series(res, 'weight_angle')[-1])} |")  # fmt: skip
    return "\n".join(lines)


def chip_verdict(float_runs: dict[str, Any], chip_runs: dict[str, Any], epochs: int) -> str:
    pal, fa, f_pal, f_fa = chip_runs["PAL"], chip_runs["FA"], float_runs["PAL"], float_runs["FA"]
    text = (f"Seed by seed at {epochs} epochs, each seed starting from the same weights on the host and on the chip: "
            f"on the chip, PAL's ∠(B, Wᵀ) minus FA's is {gap(pal, fa, 'weight_angle')} (float: "
            f"{gap(f_pal, f_fa, 'weight_angle')}), and PAL's test accuracy minus FA's {gap(pal, fa)} (float: "
            f"{gap(f_pal, f_fa)}). The chip against the float at equal settings: PAL's accuracy "
            f"{gap(pal, f_pal)}, its angle {gap(pal, f_pal, 'weight_angle')}; FA's accuracy {gap(fa, f_fa)}."
            )  # fmt: skip
    if "PAL, mismatch" in chip_runs:
        text += (f" With 10 % weight mismatch, PAL's accuracy moves by {gap(chip_runs['PAL, mismatch'], pal)} "
                 f"against the chip without mismatch.")  # fmt: skip
    return text


def settled(better: Any, worse: Any, key: str = "test_accuracy") -> bool:
    """Whether a paired gap is within twice its standard error of 0."""
    _, diff, sem = paired(better, worse, key)
    return abs(float(diff.mean())) <= 2 * sem


def chip_cause(usage: dict[str, Any], float_runs: dict[str, Any], chip_runs: dict[str, Any]) -> str:
    """How the chip keeps its learned weights' fraction, and what separates it from the float run, in numbers
    from this run."""
    rows = ["| rule | into | values with \\|y′\\| ≥ 1 | values at the ±15 clip | mean \\|y′\\| | tag updates "
            "saturated | weights at the 9-bit clip after the run |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    rules = {n: u for n, u in usage.items() if n != "decay"}
    for name, u in rules.items():
        sat = f"{100 * u['tag_sat']:.4f} % ({u['tag_sat_count']})" if u["tag"] else "(no tag)"
        rows.append(f"| {RULE_NAMES.get(name, name)} | {'t, carry into w' if u['tag'] else 'w'} | "
                    f"{100 * (1 - u['below_1']):.3f} % | {100 * u['clipped']:.3f} % | {u['mean']:.3f} | {sat} | "
                    f"{100 * u['w_clip']:.2f} % |")  # fmt: skip
    decay, pal, f_pal = usage["decay"], chip_runs["PAL"], float_runs["PAL"]
    tagged = [u for u in rules.values() if u["tag"]]
    ang = [series(r, "weight_angle")[-1].mean() for r in (pal, f_pal)]
    acc = [last_epochs(r)[1].mean() for r in (pal, f_pal)]
    k = last_epochs(pal)[0]
    direct = [RULE_NAMES.get(n, n) for n, u in rules.items() if not u["tag"]]
    text = ("**The learned weights' fraction.** Each rule changes a weight per step by a small fraction of one 9-bit "
            "weight unit. Rounded to whole units at every step (the engine's stochastic rounding: unbiased), those "
            "changes would make the weights random-walk far more than the changes themselves, which mostly cancel from "
            "step to step in float (PAL's ξ·r^HP most of all). So the rules write their products into the engine's "
            "tag t, the weight's fraction in 1/128 of a unit, and a carry moves ±1 into w once |t| reaches 128 "
            "(`gle_chip_parts.RULE_TAG`, `RULE_CARRY`): w + t/128 is a 16-bit weight whose top 9 bits drive the "
            "Dense" + (f" ({', '.join(direct)}: straight into w)" if direct else "") + ". Each rule's exponent "
            "keeps one pattern's products within a carry (|y′·x1·2^e| < 128 tag units); the patterns of a batch add "
            f"up in the accumulator, and their sum left the tag's range in at most "
            f"{100 * max(u['tag_sat'] for u in tagged):.3f} % of a projection's tag updates. PAL's decay −αB removes "
            f"{decay['chip']:.2e} of B per step on average on the chip against {decay['float']:.2e} in float. "
            "Measured in the chip's PAL run (y′ in the units of each rule's exponent):\n\n" + "\n".join(rows)
            )  # fmt: skip
    text += (f"\n\nThe chip's PAL run ends at ∠(B, Wᵀ) {ang[0]:.1f}° and {acc[0]:.1f} % test accuracy (mean of the "
             f"last {k} epochs), against {ang[1]:.1f}° and {acc[1]:.1f} % in float; seed by seed, the chip minus the "
             f"float: angle {gap(pal, f_pal, 'weight_angle')}, accuracy {gap(pal, f_pal)}.")  # fmt: skip
    left = [what for what, key in (("the angle", "weight_angle"), ("the accuracy", "test_accuracy"))
            if not settled(pal, f_pal, key)]  # fmt: skip
    if not left:
        text += " Both gaps are within twice their standard error of 0: at these seeds the chip learns as the float."
    else:
        text += (f" A gap in {' and '.join(left)} remains beyond twice its standard error. This run does not separate "
                 "its parts; the chip's remaining approximations are the third factors' rounding to integers y′ "
                 "(stochastic, unbiased; where the mean \\|y′\\| is below 1 most steps are 0 or ±1), the half carries "
                 "at t = 127 and t = −128, the clips of y′ and of the tags, B's pre trace clipped at upper rate "
                 "changes of ±2^-8, the integer neurons and tables, and the Dense's 9-bit w.")  # fmt: skip
    return text
