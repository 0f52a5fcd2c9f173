"""Loihi learning-engine rules: sum-of-products strings, parsed and evaluated in Lava 0.10's fixed point.

A rule such as ``"2^-2*x1*y0 - 2^-2*y1*x0"`` is a sum of products. Each product has one dependency
(x0, y0 or uK) that gates it, a scale m·2^e and factors. The grammar and the arithmetic follow Lava
0.10.0 (``lava/magma/core/learning/product_series.py``, ``learning_rule_applier.py``; facts:
loihi-fixed-point.md §8): what Lava rejects is rejected here too, with the term named; a few strings
Lava accepts but misreads are rejected as well (listed in ``parse_rule``).

Evaluation is vectorised numpy over any leading axes; see ``ProductSeries.accumulate`` for the operands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from neurodeploy.errors import NeurodeployError

# Widths of Lava's bit-approximate learning engine (lava/magma/core/learning/constants.py).
WIDTHS = {"x0": 1, "y0": 1, "x1": 7, "x2": 7, "y1": 7, "y2": 7, "y3": 7, "w": 9, "d": 9, "t": 9}
W_CONST = 8
W_MANTISSA = 4
W_ACCUMULATOR_U = 15
ACC_MIN, ACC_MAX = -(1 << W_ACCUMULATOR_U) - 1, (1 << W_ACCUMULATOR_U) - 1  # Lava clips to [-32769, 32767]
FRACTION_BITS = 7  # the accumulator holds the target variable times 2^7
MANTISSA_RANGE = (-8, 7)
EXPONENT_RANGE = (-7, 8)
CONST_RANGE = (-(1 << W_CONST), (1 << W_CONST) - 1)

TARGETS = ("dw", "dd", "dt")
TRACES = ("x1", "x2", "y1", "y2", "y3")
SYNAPTIC = ("w", "d", "t")
SPIKE_DEPS = ("x0", "y0")
SYMBOL_HINT = (
    "symbols are x0, y0, uK (K = 0...9), x1, x2, y1, y2, y3, w, d, t, (v + C), sgn(v + C) and literals m*2^e, 2^e, m"
)


class RuleError(NeurodeployError):
    """A learning-rule string that the Loihi learning engine (as Lava models it) cannot express."""


class Factor(NamedTuple):
    """One factor of a product: ``symbol`` plus ``constant``, or the sign of that when ``is_sign``."""

    symbol: str
    constant: int = 0
    is_sign: bool = False

    @property
    def width(self) -> int:
        """Bits the factor is clipped to (a sign factor keeps its variable's width, as in Lava)."""
        return WIDTHS[self.symbol]

    def __str__(self) -> str:
        inner = self.symbol if not self.constant else f"{self.symbol}{self.constant:+d}"
        if self.is_sign:
            return f"sgn({inner})"
        return f"({inner})" if self.constant else inner


@dataclass(frozen=True)
class Product:
    """dependency · mantissa · 2^exponent · Π factors; ``dependency`` is "x0", "y0" or "uK" (e.g. "u0")."""

    dependency: str
    mantissa: int
    exponent: int
    factors: tuple[Factor, ...] = ()

    @property
    def width_sum(self) -> int:
        return sum(f.width for f in self.factors) + W_MANTISSA

    @property
    def shift(self) -> int:
        """Right shift that brings the raw product back to 15 bits: max(0, Σ widths + 4 − 15)."""
        return max(0, self.width_sum - W_ACCUMULATOR_U)

    @property
    def dependency_key(self) -> str:
        """Operand key of the dependency: "x0", "y0", or "u" for any uK."""
        return "u" if self.dependency.startswith("u") else self.dependency

    def __str__(self) -> str:
        m, e = abs(self.mantissa), self.exponent
        scale = [] if (m, e) == (1, 0) else [f"2^{e}" if m == 1 else f"{m}*2^{e}" if e else f"{m}"]
        body = "*".join([*scale, self.dependency, *(str(f) for f in self.factors)])
        return ("-" if self.mantissa < 0 else "") + body


@dataclass(frozen=True)
class ProductSeries:
    """A parsed rule: the products of one target ("dw", "dd" or "dt")."""

    target: str
    products: list[Product] = field(default_factory=list)
    decimate_exponent: int | None = None  # K of the uK dependency, if any

    def __str__(self) -> str:
        text = " + ".join(str(p) for p in self.products)
        return text.replace("+ -", "- ")

    @property
    def operand_keys(self) -> set[str]:
        """Keys ``accumulate`` reads (trace keys per dependency, e.g. "y1_x0"; see ``accumulate``)."""
        keys: set[str] = set()
        for p in self.products:
            keys.add(p.dependency_key)
            for f in p.factors:
                keys.add(f"{f.symbol}_{p.dependency_key}" if f.symbol in TRACES else f.symbol)
        return keys

    def accumulate(self, operands: Mapping[str, np.ndarray], start: np.ndarray | int | None = None) -> np.ndarray:
        """Change of the target in units of 2^-7, product by product exactly as Lava's fixed-point applier.

        Operands are integer arrays that broadcast together, e.g. x0 ``(..., 1, n_pre)``, y0
        ``(..., n_post, 1)``, w ``(..., n_post, n_pre)``. Keys:

        - dependencies ``"x0"``, ``"y0"`` (0/1 or bool: spiked in the epoch) and ``"u"`` (0/1 for the
          rule's uK: 1 when ⌊t / t_epoch⌋ mod 2^K = 0); the caller evaluates them;
        - traces per dependency, as Lava names them: ``"y1_x0"`` is y1 at the pre spike, ``"x1_y0"`` x1 at
          the post spike, ``"x1_u"`` x1 at the epoch end; a plain ``"x1"`` is used where the specific key
          is missing;
        - synaptic variables ``"w"``, ``"d"`` (tag_2), ``"t"`` (tag_1).

        Per product: P = dep·Π clip(f + C, −2^width, 2^width − 1)·m, wrapped to int32 as Lava's int32
        multiply-accumulate does (only products with Σ widths ≥ 28 can wrap), P >> max(0, Σ widths + 4 − 15),
        P << (e + 7), P clipped to [−2^15 − 1, 2^15 − 1]; the running sum is clipped to the same range
        after each product. Lava starts the running sum at the variable's value times 2^7, which matters
        only when the sum saturates: pass that value as ``start`` to reproduce it. The result excludes
        ``start``·2^7, so it is what ``plasticity.apply_accumulator`` takes.
        """
        base = np.int64(0) if start is None else np.asarray(start, dtype=np.int64) << FRACTION_BITS
        acc = base
        for p in self.products:
            prod = _operand(operands, p.dependency_key)
            for f in p.factors:
                key = f"{f.symbol}_{p.dependency_key}" if f.symbol in TRACES else f.symbol
                val = _operand(operands, key, fallback=f.symbol) + f.constant
                if f.is_sign:
                    val = np.sign(val)
                prod = prod * np.clip(val, -(1 << f.width), (1 << f.width) - 1)
            prod = prod * p.mantissa
            if p.width_sum - 1 >= 31:  # |P| <= 2^(Σ factor widths + 3) may leave int32: wrap as Lava does
                prod = ((prod + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            prod = (prod >> p.shift) << (p.exponent + FRACTION_BITS)
            acc = np.clip(acc + np.clip(prod, ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
        return np.asarray(acc - base, dtype=np.int64)


def _operand(operands: Mapping[str, np.ndarray], key: str, fallback: str | None = None) -> np.ndarray:
    if key in operands:
        return np.asarray(operands[key], dtype=np.int64)
    if fallback is not None and fallback in operands:
        return np.asarray(operands[fallback], dtype=np.int64)
    raise KeyError(f"learning-rule operand {key!r} missing (given: {sorted(operands)})")


def u_dependency(time_step: int, t_epoch: int, k: int) -> int:
    """Lava's uK at the end of the epoch closing at 1-based ``time_step``: 1 if ⌊t / t_epoch⌋ mod 2^K = 0."""
    return int((time_step // t_epoch) % (1 << k) == 0)


# --------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[-+*^()]))")


class _Tok(NamedTuple):
    kind: str  # "num", "name", "op"
    text: str
    col: int  # 1-based column in the rule string


class _Parser:
    def __init__(self, text: str, target: str) -> None:
        self.text, self.target = text, target
        self.toks = self._tokenize()
        self.i = 0

    # ---- helpers
    def error(self, what: str, tok: _Tok | None = None, hint: str = "") -> RuleError:
        col = tok.col if tok is not None else len(self.text) + 1
        return RuleError(what, where=f"{self.target} rule {self.text!r}, column {col}", hint=hint)

    def _tokenize(self) -> list[_Tok]:
        toks, pos = [], 0
        while pos < len(self.text):
            if self.text[pos:].strip() == "":
                break
            m = _TOKEN.match(self.text, pos)
            if m is None:
                col = pos + len(self.text[pos:]) - len(self.text[pos:].lstrip()) + 1
                bad = self.text[col - 1]
                raise RuleError(
                    f"unexpected character {bad!r}",
                    where=f"{self.target} rule {self.text!r}, column {col}",
                    hint=SYMBOL_HINT,
                )
            kind = m.lastgroup or "op"
            toks.append(_Tok(kind, m.group(kind), m.start(kind) + 1))
            pos = m.end()
        return toks

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok | None:
        tok = self.peek()
        self.i += tok is not None
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in ops

    def span(self, start: int) -> str:
        """The rule text from token ``start`` up to the current token, for messages."""
        a = self.toks[start].col - 1
        b = self.toks[self.i - 1].col - 1 + len(self.toks[self.i - 1].text) if self.i > start else a
        return self.text[a:b]

    # ---- grammar
    def rule(self) -> ProductSeries:
        if not self.toks:
            raise self.error("empty rule", hint="a rule is a sum of products such as '2^-2*x0*y1'")
        products, sign = [], 1
        if self.at_op("+", "-"):
            sign = -1 if self.take().text == "-" else 1
        while True:
            products.append(self.product(sign))
            tok = self.take()
            if tok is None:
                break
            if tok.kind != "op" or tok.text not in "+-":  # product() stops only at + - or the end
                raise self.error(f"unexpected {tok.text!r}", tok)
            if self.peek() is None:
                raise self.error(f"the rule ends after {tok.text!r}", tok)
            if self.at_op("+", "-"):
                raise self.error(f"two signs in a row at {self.peek().text!r}", self.peek())
            sign = -1 if tok.text == "-" else 1
        ks = {int(p.dependency[1:]) for p in products if p.dependency.startswith("u")}
        if len(ks) > 1:
            raise self.error(f"uK with different K in one rule: {sorted(ks)}", self.toks[0], "use one K per rule")
        return ProductSeries(self.target, products, ks.pop() if ks else None)

    def product(self, sign: int) -> Product:
        first = self.i
        mant, exp, dep, factors = sign, 0, None, []
        while True:
            tok = self.peek()
            if tok is None or self.at_op("+", "-", ")", "*", "^"):
                what = "the rule ends" if tok is None else f"unexpected {tok.text!r}"
                raise self.error(f"{what} where a term was expected", tok)
            if tok.kind == "num":
                m, e = self.literal()
                mant, exp = mant * m, exp + e
            elif tok.kind == "name" and tok.text != "sgn":
                self.take()
                name = tok.text
                if name in SPIKE_DEPS or re.fullmatch(r"u\d+", name):
                    if name.startswith("u") and len(name) > 2:
                        raise self.error(
                            f"dependency {name!r}: K must be one digit",
                            tok,
                            "Lava reads 'u10' as u1 times the literal 0; write e.g. u1*... explicitly",
                        )
                    if dep is None:
                        dep = name
                    elif name.startswith("u"):
                        raise self.error(f"second dependency {name!r} in one product (it already has {dep!r})", tok)
                    else:
                        factors.append(Factor(name))  # Lava: a second x0/y0 is a 1-bit factor
                elif name in WIDTHS:
                    factors.append(Factor(name))
                else:
                    glued = any(name.startswith(s) and len(name) > len(s) for s in (*WIDTHS, "u"))
                    hint = "write '*' between terms" if glued else SYMBOL_HINT
                    raise self.error(f"unknown symbol {name!r}", tok, hint)
            elif tok.kind == "name" or self.at_op("("):  # sgn( or (
                kind, value = self.bracket()
                if kind == "scale":
                    mant, exp = mant * value[0], exp + value[1]
                else:
                    factor, negate = value
                    factors.append(factor)
                    mant *= -1 if negate else 1
            if self.at_op("*"):
                star = self.take()
                if self.peek() is None or self.at_op("+", "-"):
                    raise self.error("a term must follow '*'", star)
                continue
            if self.peek() is None or self.at_op("+", "-"):
                break
            nxt = self.peek()
            raise self.error(
                f"expected '*', '+' or '-' before {nxt.text!r}",
                nxt,
                "write products with explicit '*' (Lava would read 'x12' as x1*2)",
            )
        text = self.span(first)
        if dep is None:
            raise self.error(f"product {text!r} has no dependency", self.toks[first], "each product needs x0, y0 or uK")
        while abs(mant) > 7 and mant % 2 == 0 and exp < EXPONENT_RANGE[1]:  # Lava's normalisation
            mant, exp = mant // 2, exp + 1
        if not MANTISSA_RANGE[0] <= mant <= MANTISSA_RANGE[1]:
            raise self.error(
                f"scale {mant}*2^{exp} of product {text!r} needs a mantissa in [-8, 7]",
                self.toks[first],
                "the learning engine stores a 4-bit signed mantissa; use a power-of-two multiple of one",
            )
        if not EXPONENT_RANGE[0] <= exp <= EXPONENT_RANGE[1]:
            raise self.error(
                f"scale {mant}*2^{exp} of product {text!r} needs an exponent in [-7, 8]",
                self.toks[first],
                "the learning engine stores the exponent in 4 bits (offset 7)",
            )
        return Product(dep, mant, exp, tuple(factors))

    def literal(self) -> tuple[int, int]:
        """m, 2^e, or m*2^e (the last as Lava's single literal) -> (mantissa, exponent)."""
        tok = self.take()
        if len(tok.text) > 1 and tok.text.startswith("0"):
            raise self.error(f"literal {tok.text!r} has a leading zero", tok, "Lava's parser rejects it")
        if self.at_op("^"):
            if tok.text != "2":
                raise self.error(f"power of {tok.text}: only powers of two are literals", tok, "write m*2^e")
            self.take()
            return 1, self.exponent_value()
        return int(tok.text), 0

    def exponent_value(self) -> int:
        sign = 1
        if self.at_op("+", "-"):
            sign = -1 if self.take().text == "-" else 1
        tok = self.take()
        if tok is None or tok.kind != "num":
            raise self.error("an integer exponent must follow '^'", tok)
        return sign * int(tok.text)

    def signed_atom(self) -> tuple[int, str, object, _Tok]:
        """[+|-] (variable | literal) inside brackets -> (sign, 'var'|'lit', value, token)."""
        sign = 1
        if self.at_op("+", "-"):
            sign = -1 if self.take().text == "-" else 1
        tok = self.peek()
        if tok is None:
            raise self.error("the rule ends inside brackets", tok)
        if tok.kind == "num":
            m, e = self.literal()
            if self.at_op("*"):  # Lava's one-symbol literal m*2^e
                save = self.i
                self.take()
                nxt = self.peek()
                after = self.toks[self.i + 1].text if self.i + 1 < len(self.toks) else ""
                if nxt is not None and nxt.kind == "num" and nxt.text == "2" and after == "^":
                    m2, e2 = self.literal()
                    return sign, "lit", (m * m2, e + e2), tok
                self.i = save
            return sign, "lit", (m, e), tok
        if tok.kind == "name" and (tok.text in WIDTHS or re.fullmatch(r"u\d+", tok.text)):
            self.take()
            if tok.text.startswith("u"):
                raise self.error(f"{tok.text!r} cannot stand inside brackets", tok, "uK is a dependency, not a factor")
            return sign, "var", tok.text, tok
        raise self.error(f"unexpected {tok.text!r} inside brackets", tok, "a bracket holds 'v + C', 'v' or a literal")

    def bracket(self) -> tuple[str, object]:
        """(…) or sgn(…) -> ("scale", (m, e)) or ("factor", (Factor, negate_scale))."""
        open_tok = self.take()
        is_sign = open_tok.kind == "name"
        if is_sign and not self.at_op("("):
            raise self.error("'sgn' must be followed by '('", open_tok)
        if is_sign:
            self.take()
        label = "sgn(...)" if is_sign else "(...)"
        if self.at_op(")"):
            raise self.error(f"empty {label}", open_tok)
        atoms = [self.signed_atom()]
        if self.at_op("+", "-"):
            atoms.append(self.signed_atom())
        close = self.take()
        if close is None or close.kind != "op" or close.text != ")":
            what = "missing ')'" if close is None else f"unexpected {close.text!r} inside {label}"
            raise self.error(
                what, close or open_tok, "a bracket holds one variable plus or minus one constant: (v + C), (C + v)"
            )
        kinds = [a[1] for a in atoms]
        if kinds == ["lit"]:
            if is_sign:
                raise self.error("sgn() of a constant", open_tok, "sgn applies to w, d or t")
            sign, _, (m, e), _ = atoms[0]
            return "scale", (sign * m, e)
        if kinds == ["var"]:
            sign, _, var, tok = atoms[0]
            if sign < 0:
                raise self.error(
                    f"negated variable '-{var}' inside {label}",
                    tok,
                    "Lava ignores this sign silently; write the minus outside the brackets",
                )
            if var in SPIKE_DEPS and not is_sign:
                raise self.error(f"lone dependency '({var})'", tok, "Lava drops it silently; write it without brackets")
            return "factor", (self._factor(var, 0, is_sign, tok), False)
        if sorted(kinds) != ["lit", "var"]:
            raise self.error(f"{label} holds two {kinds[0]}s", open_tok, "a bracket holds (v + C) or (C + v)")
        (vsign, _, var, vtok), (csign, _, (m, e), ctok) = atoms if kinds[0] == "var" else atoms[::-1]
        if e < 0 and m % (1 << -e):
            raise self.error(f"constant {m}*2^{e} is not an integer", ctok)
        const = csign * (m << e if e >= 0 else m >> -e)
        if not CONST_RANGE[0] <= const <= CONST_RANGE[1]:
            lo, hi = CONST_RANGE
            raise self.error(f"constant {const} outside [{lo}, {hi}]", ctok, "constants have 8 bits (factor range)")
        if vsign < 0:
            if is_sign:
                raise self.error(f"negated variable '-{var}' inside sgn()", vtok, "Lava rejects it")
            return "factor", (self._factor(var, -const, False, vtok), True)  # -(v - C): negate the scale
        return "factor", (self._factor(var, const, is_sign, vtok), False)

    def _factor(self, var: str, const: int, is_sign: bool, tok: _Tok) -> Factor:
        if is_sign and var not in SYNAPTIC:
            raise self.error(f"sgn() of {var!r}", tok, "sgn applies to w, d or t only")
        return Factor(var, const, is_sign)


def parse_rule(text: str, target: str = "dw") -> ProductSeries:
    """Parse a Lava-style sum-of-products rule for ``target`` ("dw", "dd" or "dt").

    Grammar (whitespace ignored): rule = [±] product {± product}; product = term {* term}; term = x0 | y0
    | uK | x1 | x2 | y1 | y2 | y3 | w | d | t | (v ± C) | (C ± v) | (v) | sgn(v ± C) | (literal) | literal;
    literal = m | 2^e | m*2^e. Literals multiply into the product's scale, normalised as Lava does (m
    halved while even, |m| > 7 and e < 8) and then required in m ∈ [−8, 7], e ∈ [−7, 8]. The first
    dependency gates the product; a further x0/y0 is a 1-bit factor (as in Lava).

    Raises ``RuleError`` naming the term and column for everything Lava rejects, and also for strings
    Lava accepts but misreads: juxtaposition without '*' ("x12" is x1·2 there), uK with K > 9, a
    negated lone variable in brackets ("(-x1)", whose sign Lava drops), a lone dependency in brackets
    ("(x0)", dropped), '*' inside brackets ("(x1*2)" is x1 + 2 there), a second uK in a product
    (ignored), non-integer constants, and constants outside the 8-bit factor range [-256, 255].
    """
    if target not in TARGETS:
        raise RuleError(f"unknown rule target {target!r}", where="parse_rule", hint=f"choose from {TARGETS}")
    if not isinstance(text, str):
        raise RuleError(f"a rule must be a string, got {type(text).__name__}", where=f"{target} rule")
    return _Parser(text, target).rule()


__all__ = ["RuleError", "Factor", "Product", "ProductSeries", "parse_rule", "u_dependency", "ACC_MIN", "ACC_MAX"]
