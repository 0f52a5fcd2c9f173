"""User-defined local rules (``neurodeploy.rules.custom``) in the learning pass: locality, engine limits,
and the translation into engine products (fixed point) or a float update (``ideal``).

A rule's terms are sums of products of a synapse's local signals, gated by its post neuron's bAP (y0),
in units of the run's learning step η/active: ``dt = y0*d*y3 - y0*d*y2`` is the built-in forward rule
−η·δ·x̄. On a fixed-point profile each product's scale becomes M = s·(η/active)·2^shift·2^b·λ·Π unit,
where shift is the engine's right shift for the product's widths, b the tag bits, λ the weight LSBs per
threshold and unit each factor's float value per integer (δ per LSB for y2, y3 and x1 - 64), and M is
rounded onto the engine's grid m·2^e (m ≤ 7, e in [−7, 8]). On ``ideal`` the terms are evaluated in
float64 (a function form runs as written). The compiler owns the rest of the engine program: the pre
spike counter d (``dd``), the tag's move into the weight every minibatch (``uK``) and the decay option.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.emulator.learning_rule import (
    EXPONENT_RANGE,
    WIDTHS,
    Factor,
    Product,
    ProductSeries,
    RuleError,
    parse_rule,
)
from neurodeploy.errors import NeurodeployError

DEFAULT_MAX_PRODUCTS = 8  # neurodeploy's cap per rule when the profile sets no [plasticity].max_products
GRADED_OFFSET = 64
INT32_WIDTHS = 31  # Σ factor widths + 4 up to this: beyond, the int32 multiply-accumulate may wrap

# engine symbols a synapse can read, per projection kind ("forward": W and bias; "graded": plastic B)
SYMBOLS: dict[str, dict[str, str]] = {
    "forward": {
        "y0": "the bAP of the post neuron (every product's dependency)",
        "d": "pre_trace: the pre neuron's spikes in the presentation",
        "y1": "post_trace: the post neuron's spike count",
        "y2": "third_factor, positive part δ⁺",
        "y3": "third_factor, negative part δ⁻ (δ = y2 − y3)",
        "w": "weight",
        "t": "tag",
    },
    "graded": {
        "y0": "the bAP of the post neuron (every product's dependency)",
        "x1": "pre_trace, read as (x1 - 64): the upper layer's δ as a signed graded spike",
        "y1": "post_trace: the lower neuron's spike count",
        "w": "weight",
        "t": "tag",
    },
}
_SIGNAL_OF = {"forward": {"pre_trace": "d", "post_trace": "y1", "weight": "w", "tag": "t"},
              "graded": {"pre_trace": "x1", "post_trace": "y1", "weight": "w", "tag": "t"}}  # fmt: skip


@dataclass(frozen=True)
class Term:
    """coef · y0 · Π factors: one product of a rule, its scale in units of η/active."""

    coef: float
    factors: tuple[Factor, ...]

    def product(self) -> Product:
        return Product("y0", 1, 0, self.factors)


@dataclass
class CompiledRule:
    """A checked user rule: its terms per projection kind and the float updates ``ideal`` runs."""

    name: str
    forward: list[Term]
    feedback: list[Term] | None
    forward_float: Callable[[dict[str, Any]], Any]
    feedback_float: Callable[[dict[str, Any]], Any] | None
    text: dict[str, str]
    checked: bool = False  # the first rates (from build) refuse scales off the engine's grid; later ones round


def motif_of(rule: Any) -> Any:
    """The motif of a built-in rule's name or of a user-defined rule (``neurodeploy.rules.custom``)."""
    from neurodeploy.rules import motif

    return rule.motif() if hasattr(rule, "motif") else motif(rule)


def _allowed(kind: str) -> str:
    return "; ".join(f"{s}: {what}" for s, what in SYMBOLS[kind].items())


def _nonlocal(rule: str, part: str, quantity: str, kind: str, why: str = "") -> NeurodeployError:
    why = why or "it is not a local signal of the synapse (the chip has no wire that brings it there)"
    names = ["pre_trace", "post_trace", "third_factor", "weight", "tag"]
    if kind == "graded":
        names.remove("third_factor")
    return NeurodeployError(
        f"rule {rule!r} reads {quantity!r}: {why}",
        f"rule {rule!r}, {part} rule",
        f"a {part} synapse may read: {_allowed(kind)}; as a function: {', '.join(names)}",
    )


def _check_names(rule: str, part: str, kind: str, expr: str) -> None:
    """Refuse every identifier the synapse cannot read, by name, before the engine's parser sees it."""
    for ident in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expr):
        if ident == "sgn" or ident in SYMBOLS[kind]:
            continue
        if re.fullmatch(r"u(\d+|K)?", ident):
            why = "the tag's move into the weight (uK) belongs to the compiler; weight decay is the decay= option"
        elif ident == "x0":
            why = "products gated by the pre spike are not evaluated: the rule runs at the post neuron's bAP (y0)"
        elif ident in WIDTHS:
            why = f"the engine variable {ident!r} is not delivered to {part} synapses in this motif"
        else:
            why = ""
        raise _nonlocal(rule, part, ident, kind, why)


def _from_string(rule: str, part: str, kind: str, text: str) -> list[Term]:
    terms: list[Term] = []
    for stmt in (s.strip() for s in re.split(r"[;\n]", text)):
        if not stmt:
            continue
        m = re.fullmatch(r"(\w+)\s*=(.*)", stmt, re.S)
        target, expr = (m.group(1), m.group(2)) if m else ("dt", stmt)
        if target not in ("dt", "dw"):
            raise NeurodeployError(
                f"rule {rule!r} assigns {target!r}",
                f"rule {rule!r}, {part} rule {stmt!r}",
                "write 'dt = ...' or 'dw = ...'; the compiler owns dd (the pre spike counter d)",
            )
        _check_names(rule, part, kind, expr)
        try:
            series = parse_rule(expr.strip(), "dt")
        except RuleError as err:
            raise NeurodeployError(err.what, f"rule {rule!r}, {part} rule: {err.where}", err.hint) from None
        for p in series.products:
            for f in p.factors:
                ok = f.constant == 0 or (kind == "graded" and f.symbol == "x1" and f.constant == -GRADED_OFFSET)
                if kind == "graded" and f.symbol == "x1" and (f.constant != -GRADED_OFFSET or f.is_sign):
                    ok = False
                if not ok:
                    raise NeurodeployError(
                        f"rule {rule!r}: factor {f} of product {p}",
                        f"rule {rule!r}, {part} rule {stmt!r}",
                        "offsets have no portable meaning between profiles; the one offset is (x1 - 64), how B "
                        "reads the upper δ",
                    )
            terms.append(Term(p.mantissa * 2.0**p.exponent, p.factors))
    if not terms:
        raise NeurodeployError(f"rule {rule!r} has an empty {part} rule", f"rule {rule!r}, {part}", "e.g. 'dt = ...'")
    return terms


class _Poly:
    """A sum of products of local signals, built by running the user's function on symbols."""

    __array_ufunc__ = None  # numpy functions on a symbol raise TypeError: not a sum of products

    def __init__(self, terms: dict[tuple[Factor, ...], float]) -> None:
        self.terms = {k: v for k, v in terms.items() if v != 0}

    @staticmethod
    def of(x: Any) -> _Poly:
        if isinstance(x, _Poly):
            return x
        if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
            return _Poly({(): float(x)})
        raise TypeError(f"a {type(x).__name__} is not a local signal or a number")

    def __add__(self, other: Any) -> _Poly:
        out = dict(self.terms)
        for k, v in _Poly.of(other).terms.items():
            out[k] = out.get(k, 0.0) + v
        return _Poly(out)

    __radd__ = __add__

    def __neg__(self) -> _Poly:
        return _Poly({k: -v for k, v in self.terms.items()})

    def __pos__(self) -> _Poly:
        return self

    def __sub__(self, other: Any) -> _Poly:
        return self + (-_Poly.of(other))

    def __rsub__(self, other: Any) -> _Poly:
        return _Poly.of(other) - self

    def __mul__(self, other: Any) -> _Poly:
        out: dict[tuple[Factor, ...], float] = {}
        for ka, va in self.terms.items():
            for kb, vb in _Poly.of(other).terms.items():
                key = tuple(sorted(ka + kb, key=str))
                out[key] = out.get(key, 0.0) + va * vb
        return _Poly(out)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> _Poly:
        if isinstance(other, _Poly):
            raise TypeError("division by a signal")
        return self * (1.0 / float(other))

    def __pow__(self, n: Any) -> _Poly:
        if not isinstance(n, int) or n < 1:
            raise TypeError(f"power {n!r}")
        out = self
        for _ in range(n - 1):
            out = out * self
        return out

    def __bool__(self) -> bool:
        raise TypeError("a branch on a signal's value")


def _signature(rule: str, part: str, kind: str, fn: Callable[..., Any]) -> list[str]:
    """The declared signals, refusing any name that is not local (and arrays captured from outside)."""
    names = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise _nonlocal(rule, part, p.name, kind, "a rule function declares its signals by name")
        if p.name not in _SIGNAL_OF[kind] and not (kind == "forward" and p.name == "third_factor"):
            why = (
                "the post neuron's δ is not delivered to feedback synapses"
                if p.name == "third_factor"
                else "it is not one of the local signals"
            )
            raise _nonlocal(rule, part, p.name, kind, why)
        names.append(p.name)
    code = getattr(fn, "__code__", None)
    if code is not None:
        outside = [(n, getattr(fn, "__globals__", {}).get(n)) for n in code.co_names]
        outside += [(n, c.cell_contents) for n, c in zip(code.co_freevars, fn.__closure__ or (), strict=False)]
        for n, value in outside:
            if isinstance(value, np.ndarray) and value.size > 1:
                raise _nonlocal(rule, part, n, kind, "an array from outside the synapse (e.g. another layer's weights)")
    return names


def _symbols(kind: str) -> dict[str, _Poly]:
    one = {k: _Poly({(Factor(s),): 1.0}) for k, s in _SIGNAL_OF[kind].items()}
    if kind == "graded":
        one["pre_trace"] = _Poly({(Factor("x1", -GRADED_OFFSET),): 1.0})
    else:
        one["third_factor"] = _Poly({(Factor("y2"),): 1.0, (Factor("y3"),): -1.0})
    return one


def _from_function(rule: str, part: str, kind: str, fn: Callable[..., Any], names: list[str]) -> list[Term]:
    sym = _symbols(kind)
    try:
        poly = _Poly.of(fn(**{n: sym[n] for n in names}))
    except Exception as err:  # noqa: BLE001 - any failure means the function is not a sum of products
        raise NeurodeployError(
            f"rule {rule!r}: the {part} function is not a sum of products of local signals ({err})",
            f"rule {rule!r}, {part} function {getattr(fn, '__name__', '')}",
            "the learning engine computes sums of products with constant scales; use + - * and constants, or "
            "write the rule as an engine string, or run it on profile 'ideal' (float)",
        ) from None
    terms = [Term(v, k) for k, v in poly.terms.items()]
    if not terms:
        raise NeurodeployError(f"rule {rule!r}: the {part} function is zero", f"rule {rule!r}, {part}", "")
    return terms


def _float_terms(terms: list[Term]) -> Callable[[dict[str, Any]], Any]:
    def update(sym: dict[str, Any]) -> Any:
        total: Any = 0.0
        for term in terms:
            val: Any = term.coef
            for f in term.factors:
                key = f"{f.symbol}{f.constant:+d}"  # "x1-64": the graded δ itself, without a float round trip
                v = sym[key] if key in sym else sym[f.symbol] + f.constant
                val = val * (np.sign(v) if f.is_sign else v)
            total = total + val
        return total

    return update


def _float_function(fn: Callable[..., Any], names: list[str], kind: str) -> Callable[[dict[str, Any]], Any]:
    def update(sym: dict[str, Any]) -> Any:
        signals = {"post_trace": sym["y1"], "weight": sym["w"], "tag": sym["t"]}
        if kind == "graded":
            signals["pre_trace"] = sym["x1-64"]
        else:
            signals["pre_trace"], signals["third_factor"] = sym["d"], sym["y2"] - sym["y3"]
        return fn(**{n: signals[n] for n in names})

    return update


def _probe(rule: str, part: str, kind: str, update: Callable[[dict[str, Any]], Any]) -> None:
    """Run a float function once on small arrays, so that a failing one stops before training starts."""
    rng = np.random.default_rng(0)
    shape = (1, 2, 3, 4)  # (instances, presentations, post, pre)
    sym = {s: rng.random(shape) for s in ("d", "y1", "y2", "y3", "w", "t")}
    sym["x1-64"] = rng.standard_normal(shape)
    sym["x1"] = GRADED_OFFSET + sym["x1-64"]
    try:
        out = np.broadcast_to(np.asarray(update(sym), dtype=float), shape)
    except Exception as err:  # noqa: BLE001 - report any failure of the user's function as one error
        raise NeurodeployError(
            f"rule {rule!r}: the {part} function fails on arrays of local signals ({err})",
            f"rule {rule!r}, {part} function",
            "it receives numpy arrays shaped (instances, presentations, post, pre) and returns the update",
        ) from None
    if not np.isfinite(out).all():
        raise NeurodeployError(f"rule {rule!r}: the {part} function returns NaN or infinity", f"rule {rule!r}", "")


def _check_limits(rule: str, part: str, terms: list[Term], profile: Any) -> None:
    cap = int(profile.plasticity.get("max_products", DEFAULT_MAX_PRODUCTS))
    if len(terms) + 1 > cap:  # + the tag's move, which the compiler appends
        raise NeurodeployError(
            f"rule {rule!r}: the {part} rule has {len(terms)} products, {len(terms) + 1} with the compiler's tag "
            f"move, over the limit of {cap} products per rule (max_products)",
            f"rule {rule!r}, {part} rule; {profile.path}: [plasticity].max_products",
            f"use at most {cap - 1} products, e.g. by factoring common terms",
        )
    for term in terms:
        p = term.product()
        if p.width_sum > INT32_WIDTHS:
            raise NeurodeployError(
                f"rule {rule!r}: product {p} spans {p.width_sum} bits (factor widths + the 4-bit mantissa), over "
                f"the int32 multiply-accumulate limit of {INT32_WIDTHS} bits (trace widths: 7, w/t/d: 9, y0: 1)",
                f"rule {rule!r}, {part} rule",
                "use fewer factors per product",
            )


def compile_rule(rule: Any, profile: Any, numerics: str) -> CompiledRule:
    """Check ``rule`` (a ``LocalRule``) for locality and the engine's limits; one clear error otherwise."""
    parts: dict[str, Any] = {}
    for part, kind, body in (("forward", "forward", rule.forward), ("feedback", "graded", rule.feedback)):
        if body is None:
            parts[part] = (None, None)
            continue
        if isinstance(body, str):
            terms = _from_string(rule.name, part, kind, body)
            parts[part] = (terms, _float_terms(terms))
        else:
            names = _signature(rule.name, part, kind, body)
            fixed = numerics == "loihi"
            terms = _from_function(rule.name, part, kind, body, names) if fixed else []
            parts[part] = (terms, _float_function(body, names, kind))
            if not fixed:
                _probe(rule.name, part, kind, parts[part][1])
        if terms:
            _check_limits(rule.name, part, terms, profile)
    text = {p: (b if isinstance(b, str) else getattr(b, "__name__", "function")) for p, b in
            (("forward", rule.forward), ("feedback", rule.feedback)) if b is not None}  # fmt: skip
    return CompiledRule(rule.name, parts["forward"][0], parts["feedback"][0], parts["forward"][1],
                        parts["feedback"][1], text)  # fmt: skip


def _engine_products(comp: CompiledRule, terms: list[Term], part: str, lnet: Any, strict: bool) -> tuple[str, float]:
    """The engine string of ``terms`` at the run's η, and the realised/target ratio of its first product."""
    b = lnet.tag_bits
    lsb = lnet.layers[-1].delta_scale
    unit = {"y0": 1.0, "d": 1.0, "y1": 1.0, "y2": lsb, "y3": lsb, "x1": lsb, "w": 1.0 / lnet.scale,
            "t": 1.0 / (lnet.scale * 2.0**b)}  # fmt: skip
    base = lnet.lr / lnet.schedule.active * 2.0**b * lnet.scale
    lo, hi = 2.0 ** EXPONENT_RANGE[0], 7 * 2.0 ** EXPONENT_RANGE[1]
    products, ratio = [], None
    for term in terms:
        p = term.product()
        target = term.coef * base * 2.0**p.shift * math.prod(1.0 if f.is_sign else unit[f.symbol] for f in p.factors)
        if strict and not lo / math.sqrt(2) <= abs(target) <= hi:
            side = "below" if abs(target) < lo else "above"
            raise NeurodeployError(
                f"rule {comp.name!r}: product {Product('y0', 1, 0, p.factors)} needs an engine scale of "
                f"{abs(target):.3g}, {side} the engine's range m·2^e with m ≤ 7 and e in "
                f"[{EXPONENT_RANGE[0]}, {EXPONENT_RANGE[1]}] (the 4-bit exponent)",
                f"rule {comp.name!r}, {part} rule",
                "scale the product's coefficient, or change lr / tag_bits (a larger tag_bits raises every scale "
                "by 2^tag_bits)",
            )
        from neurodeploy.compiler.learning import scale_grid

        m, e, real = scale_grid(min(max(abs(target), lo), hi))
        ratio = real / abs(target) if ratio is None else ratio
        products.append(Product("y0", int(math.copysign(m, target)), e, p.factors))
    return str(ProductSeries("dt", products)), float(ratio or 1.0)


def custom_rates(lnet: Any) -> None:
    """Rewrite the engine rules of ``lnet`` (after ``set_rates``) from its user rule at ``lnet.lr``."""
    from neurodeploy.compiler.learning import EngineRule, _term, scale_grid

    comp: CompiledRule = lnet.custom
    strict, comp.checked = not comp.checked, True
    k = int(math.log2(lnet.batch * lnet.schedule.steps))
    b, lr, decay = lnet.tag_bits, lnet.lr, lnet.decay
    rules: dict[str, tuple[list[Term] | None, Any, str, str]] = {}
    for layer in lnet.layers:
        for name in layer.plastic:
            rules[name] = (comp.forward, comp.forward_float, "forward", "spikes")
    for fb in lnet.feedback:
        if fb.plastic:
            rules[fb.name] = (comp.feedback, comp.feedback_float, "feedback", "graded")
    if lnet.numerics == "loihi":
        dec, dec_real = "", 0.0
        if decay > 0:
            md, ed, dreal = scale_grid(decay * 2.0**b)
            md, ed, dreal = (1, -7, 2.0**-7) if ed < -7 else (md, ed, dreal)
            dec, dec_real = f" - {_term(md, ed)}*u{k}*w", dreal / 2.0**b
        text = {part: _engine_products(comp, terms, part, lnet, strict) for terms, _, part, _ in rules.values()
                if terms is not None}  # fmt: skip
        for name, (_, _, part, pre) in rules.items():
            body, ratio = text[part]
            dd = "x0 - y0*d" if pre == "spikes" else ""
            dt = f"{body} - u{k}*t{dec}"
            lnet.engine[name] = EngineRule(name, dt, f"2^-{b}*u{k}*t", dd, pre, lr * ratio, dec_real)
        return
    for name, (_, update, part, pre) in rules.items():
        dt = f"{lr:g}/active*[{comp.text[part]}] - u{k}*t" + (f" - {decay:g}*u{k}*w" if decay else "")
        lnet.engine[name] = EngineRule(name, dt, f"u{k}*t", "x0 - y0*d" if pre == "spikes" else "", pre, lr, decay,
                                       update=update)  # fmt: skip


__all__ = ["CompiledRule", "Term", "SYMBOLS", "DEFAULT_MAX_PRODUCTS", "compile_rule", "custom_rates", "motif_of"]
