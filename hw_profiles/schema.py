"""Hardware profiles: chip numerics, per-core limits and costs as data, each number with its source.

A profile file is TOML. Numbers live in the sections ``numerics``, ``limits`` and ``energy`` as inline
tables ``{ value = ..., source = "key", verified = false, note = "..." }``; ``source`` must name an entry
of ``[sources]``. ``[mismatch]`` entries describe device-to-device variation of one parameter instead:
``{ sigma = 0.1, distribution = "normal", scope = "neuron", source = "key", ... }`` (sigma relative,
p' = p·(1 + sigma·N(0, 1)) for "normal", p·exp(sigma·N(0, 1)) for "lognormal"; scope: one draw per
"synapse", "neuron" or "core"); the profile holds ``{sigma, distribution, scope}`` per parameter. The entry
``v_noise`` is temporal: Gaussian membrane noise drawn every step, sigma in nominal thresholds.
Validation reports every problem by file and field.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurodeploy.errors import ProfileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
KINDS = ("digital", "analog", "ideal")
# "xylo": SynSense Xylo's integer IAF core (compiler/lower_xylo.py, emulator/xylo.py).
# "float": deterministic float CUBA LIF (ideal, software neurons); "analog": the same core whose parameters
# are sampled per chip instance from the profile's [mismatch] (emulator/mismatch.py).
CORE_MODELS = ("loihi", "float", "analog", "xylo")
MISMATCH_DISTRIBUTIONS = ("normal", "lognormal")
MISMATCH_SCOPES = ("synapse", "neuron", "core")
SECTIONS = ("numerics", "limits", "energy", "mismatch", "plasticity")
# [plasticity] engine: what on-chip learning the chip offers. Only "loihi" (sum-of-products engine) and
# "float" (the ideal reference) are modelled; the others document the chip and make ``learn`` refuse.
PLASTICITY_ENGINES = ("loihi", "float", "programmable", "none")

# field -> (type check, description) for the values the compiler reads
_INT = (int,)
_KNOWN: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "numerics": {
        "synaptic_latency": (_INT, "an integer >= 0"),
        "weight_bits": (_INT, "an integer between 1 and 9"),
        "weight_exp": ((list,), "a [min, max] pair of integers"),
        "arithmetic": ((str,), 'one of "lava" (Lava 0.10 fixed_pt, the default), "loihi1" (nengo-loihi/brian2-loihi)'),
        "du_bits": (_INT, "an integer"),
        "dv_bits": (_INT, "an integer"),
        "vth_bits": (_INT, "an integer"),
        "bias_mant_bits": (_INT, "an integer"),
        "bias_exp": ((list,), "a [min, max] pair of integers"),
        "state_bits": (_INT, "an integer"),
        "reset_modes": ((list,), 'a list of "zero" / "subtract"'),
        "refractory": ((bool,), "true or false"),
        "max_refractory": (_INT, "an integer >= 0 (steps)"),
        "max_delay": (_INT, "an integer >= 0"),
        "weight_magnitude_bits": (_INT, "an integer between 1 and 16"),
        "sign_by_rows": ((bool,), "true or false"),
        "shared_parameters": ((str,), 'one of "neuron", "core"'),
        "synapse_bits": (_INT, "a positive integer"),
        "trim_bits": (_INT, "a positive integer"),
        "trim_range": ((int, float), "a number between 0 and 1 (relative threshold trim)"),
        "bias_trim_bits": (_INT, "a positive integer"),
        "bias_trim_range": ((int, float), "a positive number (nominal thresholds per step)"),
    },
    "plasticity": {
        "engine": ((str,), 'one of "loihi", "float", "programmable", "none"'),
        "trace_bits": (_INT, "an integer"),
        "max_epoch": (_INT, "an integer >= 1"),
        "third_factor": ((bool,), "true or false"),
        "noise_source": ((bool,), "true or false"),
        "weight_bits": (_INT, "an integer"),
        "graded_spikes": ((bool,), "true or false"),
        "programmable_neurons": ((bool,), "true or false"),
    },
    "limits": {
        "neurons_per_core": (_INT, "a positive integer"),
        "synapse_memory_bits_per_core": (_INT, "a positive integer"),
        "fan_in_axons_per_core": (_INT, "a positive integer"),
        "fan_out_axons_per_core": (_INT, "a positive integer"),
        "cores_per_chip": (_INT, "a positive integer"),
        "chips": (_INT, "a positive integer (the system's chips: cores_per_chip x chips cores in all)"),
        "fan_in_per_neuron": (_INT, "a positive integer"),
        "fan_out_cores_per_neuron": (_INT, "a positive integer"),
    },
    "energy": {
        "synaptic_op_pj": ((int, float), "a number of picojoules"),
        "neuron_update_pj": ((int, float), "a number of picojoules"),
    },
}


@dataclass(frozen=True)
class Citation:
    source: str
    reference: str
    verified: bool = True
    note: str = ""


@dataclass(frozen=True, eq=False)
class Profile:
    """A validated chip profile. Sections map field names to plain values."""

    name: str
    title: str
    kind: str
    core_model: str
    numerics: dict[str, Any]
    limits: dict[str, Any]
    energy: dict[str, Any]
    mismatch: dict[str, Any]
    plasticity: dict[str, Any]
    sources: dict[str, str]
    citations: dict[str, Citation] = field(default_factory=dict)
    path: str = ""
    text: str = ""

    @property
    def synaptic_latency(self) -> int:
        return int(self.numerics.get("synaptic_latency", 0))

    def limit(self, key: str) -> int | None:
        """A per-core limit, or None when the profile sets none (unlimited)."""
        value = self.limits.get(key)
        return None if value is None else int(value)


def _fail(path: str, field_name: str, problem: str, hint: str) -> ProfileError:
    return ProfileError(problem, f"{path}, field {field_name}", hint)


def parse_profile(text: str, path: str = "<profile>") -> Profile:
    """Parse and validate profile TOML text; raises ProfileError naming the file and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"not valid TOML: {exc}", path, "fix the syntax at the position shown") from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise _fail(
            path,
            "schema_version",
            f"schema_version is {version!r}, expected {SCHEMA_VERSION}",
            f"set schema_version = {SCHEMA_VERSION}",
        )
    for key in ("name", "title", "kind", "core_model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(path, key, f"missing or empty string field {key!r}", f'add {key} = "..."')
    if data["kind"] not in KINDS:
        raise _fail(path, "kind", f"unknown kind {data['kind']!r}", f"use one of {', '.join(KINDS)}")
    if data["core_model"] not in CORE_MODELS:
        raise _fail(
            path, "core_model", f"unknown core_model {data['core_model']!r}", f"use one of {', '.join(CORE_MODELS)}"
        )
    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise _fail(path, "sources", "[sources] must map keys to reference strings", "see hw_profiles/loihi2.toml")
    unknown = set(data) - {"schema_version", "name", "title", "kind", "core_model", "sources", *SECTIONS}
    if unknown:
        raise _fail(
            path,
            sorted(unknown)[0],
            f"unknown top-level field {sorted(unknown)[0]!r}",
            f"allowed sections are sources, {', '.join(SECTIONS)}",
        )

    sections: dict[str, dict[str, Any]] = {}
    citations: dict[str, Citation] = {}
    for section in SECTIONS:
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise _fail(path, section, f"[{section}] must be a table", "write it as a [section] of fields")
        values: dict[str, Any] = {}
        for key, entry in raw.items():
            where = f"{section}.{key}"
            if section == "mismatch":
                value = _mismatch_entry(path, where, key, entry)
            elif not isinstance(entry, dict) or "value" not in entry:
                raise _fail(
                    path,
                    where,
                    "every number needs a value and its source",
                    f'write {key} = {{ value = ..., source = "<key in [sources]>" }}',
                )
            else:
                value = entry["value"]
            src = entry.get("source")
            if src not in sources:
                raise _fail(
                    path,
                    where,
                    f"source {src!r} is not listed in [sources]",
                    "add it to [sources] with a full reference",
                )
            expected = _KNOWN.get(section, {}).get(key)
            if expected is not None:
                _check_value(path, where, value, *expected)
            elif not _in_range(where, value):
                raise _fail(path, where, f"got {value!r}, expected a finite value", "correct the value")
            values[key] = value
            citations[where] = Citation(
                src, sources[src], bool(entry.get("verified", True)), str(entry.get("note", ""))
            )
        sections[section] = values
    return Profile(
        name=data["name"],
        title=data["title"],
        kind=data["kind"],
        core_model=data["core_model"],
        numerics=sections["numerics"],
        limits=sections["limits"],
        energy=sections["energy"],
        mismatch=sections["mismatch"],
        plasticity=sections["plasticity"],
        sources=dict(sources),
        citations=citations,
        path=path,
        text=text,
    )


def _mismatch_entry(path: str, where: str, key: str, entry: Any) -> dict[str, Any]:
    """``{sigma, distribution, scope}`` of one [mismatch] entry, checked."""
    if not isinstance(entry, dict) or "sigma" not in entry:
        raise _fail(
            path,
            where,
            "a mismatch entry needs a relative sigma, a distribution, a scope and a source",
            f'write {key} = {{ sigma = 0.1, distribution = "normal", scope = "neuron", source = "..." }}',
        )
    sigma = entry["sigma"]
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 <= sigma < 10:
        raise _fail(
            path,
            where + ".sigma",
            f"got {sigma!r}, expected a relative standard deviation >= 0",
            "write e.g. sigma = 0.1 for 10 %",
        )
    dist = entry.get("distribution", "normal")
    if dist not in MISMATCH_DISTRIBUTIONS:
        raise _fail(
            path,
            where + ".distribution",
            f"unknown distribution {dist!r}",
            f"use one of {', '.join(MISMATCH_DISTRIBUTIONS)}",
        )
    scope = entry.get("scope", "neuron")
    if scope not in MISMATCH_SCOPES:
        raise _fail(path, where + ".scope", f"unknown scope {scope!r}", f"use one of {', '.join(MISMATCH_SCOPES)}")
    extra = set(entry) - {"sigma", "distribution", "scope", "source", "verified", "note"}
    if extra:
        raise _fail(
            path,
            where,
            f"unknown key {sorted(extra)[0]!r} in a mismatch entry",
            "allowed: sigma, distribution, scope, source, verified, note",
        )
    return {"sigma": float(sigma), "distribution": dist, "scope": scope}


# Hardware-sensible bounds per field, inclusive: a value outside is a typo or an attack, never a chip.
_BIG = 1 << 40
RANGES: dict[str, tuple[float, float]] = {
    "numerics.synaptic_latency": (0, 64),
    "numerics.du_bits": (1, 32),
    "numerics.dv_bits": (1, 32),
    "numerics.vth_bits": (1, 32),
    "numerics.bias_mant_bits": (1, 32),
    "numerics.state_bits": (1, 64),
    "numerics.max_refractory": (0, 1024),
    "numerics.max_delay": (0, 1 << 20),
    "numerics.synapse_bits": (1, 32),
    "numerics.trim_bits": (1, 16),
    "numerics.bias_trim_bits": (1, 16),
    "numerics.bias_trim_range": (1e-9, 1e3),
    "numerics.weight_exp": (-64, 64),
    "numerics.bias_exp": (-64, 64),
    "plasticity.trace_bits": (1, 32),
    "plasticity.max_epoch": (1, 1 << 16),
    "plasticity.weight_bits": (1, 16),
    "limits.neurons_per_core": (1, 1 << 24),
    "limits.synapse_memory_bits_per_core": (1, _BIG),
    "limits.fan_in_axons_per_core": (1, 1 << 24),
    "limits.fan_out_axons_per_core": (1, 1 << 24),
    "limits.cores_per_chip": (1, 1 << 20),
    "limits.chips": (1, 1 << 20),
    "limits.fan_in_per_neuron": (1, 1 << 24),
    "limits.fan_out_cores_per_neuron": (1, 1 << 20),
    "energy.synaptic_op_pj": (0, 1e9),
    "energy.neuron_update_pj": (0, 1e9),
}


def _in_range(where: str, value: Any) -> bool:
    """Finite, and inside ``RANGES`` where the field has a range (pairs: both ends)."""
    lo, hi = RANGES.get(where, (-float("inf"), float("inf")))
    items = value if isinstance(value, list) else [value]
    for v in items:
        if isinstance(v, float) and v != v or isinstance(v, float) and v in (float("inf"), float("-inf")):
            return False
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not lo <= v <= hi:
            return False
    return True


def _check_value(path: str, where: str, value: Any, types: tuple[type, ...], desc: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if ok and isinstance(value, list) and desc.startswith("a [min, max]"):
        ok = len(value) == 2 and all(isinstance(v, int) for v in value) and value[0] <= value[1]
    if ok and isinstance(value, int) and not isinstance(value, bool) and "positive" in desc:
        ok = value > 0
    if ok and isinstance(value, int) and not isinstance(value, bool) and ">= 0" in desc:
        ok = value >= 0
    if ok and where.endswith(".weight_bits"):
        ok = 1 <= value <= 9
    if ok and where.endswith("weight_magnitude_bits"):
        ok = 1 <= value <= 16
    if ok and where.endswith(".trim_range"):
        ok = 0 < value < 1
    if ok and where.endswith(".bias_trim_range"):
        ok = value > 0
    if ok and where.endswith("shared_parameters"):
        ok = value in ("neuron", "core")
    if ok and where.endswith("reset_modes"):
        ok = all(v in ("zero", "subtract") for v in value)
    if ok and where.endswith(".arithmetic"):
        ok = value in ("lava", "loihi1")
    if not ok:
        raise _fail(path, where, f"got {value!r}, expected {desc}", "correct the value")
    if not _in_range(where, value):
        lo, hi = RANGES.get(where, (None, None))
        bound = f"a finite value in [{lo:g}, {hi:g}]" if lo is not None else "a finite value"
        raise _fail(path, where, f"got {value!r}, expected {bound}", "correct the value")


MAX_PROFILE_BYTES = 1 << 20  # a profile is a few KB of TOML; the shipped ones are under 10 KB


def load_profile_file(path: Path) -> Profile:
    """A user's profile file: a regular file of at most ``MAX_PROFILE_BYTES``, read in one go. Devices,
    pipes and oversized files are refused before reading (``/dev/zero`` would never end)."""
    import stat

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ProfileError("a profile must be a regular file, not a device, pipe or folder", str(path),
                               "pass the path of a .toml profile file")  # fmt: skip
        if info.st_size > MAX_PROFILE_BYTES:
            raise ProfileError(
                f"profile file is {info.st_size:,} bytes, over the {MAX_PROFILE_BYTES:,}-byte limit",
                str(path),
                "a profile is a few KB of TOML; check that this is the right file",
            )
        with path.open("rb") as fh:
            text = fh.read(MAX_PROFILE_BYTES + 1).decode("utf-8")
        if len(text) > MAX_PROFILE_BYTES:
            raise ProfileError("profile file grew past the size limit while being read", str(path),
                               "pass a regular, finished .toml file")  # fmt: skip
    except FileNotFoundError:
        raise ProfileError("profile file not found", str(path), "check the path, or use a profile name") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read profile: {exc}", str(path), "pass a readable UTF-8 TOML file") from None
    return parse_profile(text, str(path))
