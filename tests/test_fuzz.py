"""Bad-input fuzzing under a fixed time budget: every case ends in NeurodeployError or a clean success.

Covers the NIR loader + compile, the artifact loader, profile TOML, ``run`` inputs and the CLI. Cases are
drawn from a fixed seed (``NEURODEPLOY_FUZZ_SEED``) for ``NEURODEPLOY_FUZZ_SECONDS`` (default 16 s,
shared by the in-process groups), so a failure reproduces. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.errors import NeurodeployError
from neurodeploy.hw_profiles import parse_profile

SEED = int(os.environ.get("NEURODEPLOY_FUZZ_SEED", "20261125"))
BUDGET_S = float(os.environ.get("NEURODEPLOY_FUZZ_SECONDS", "16"))
TRACE = bool(os.environ.get("NEURODEPLOY_FUZZ_TRACE"))
CASE_LIMIT_S = 15.0  # one input that takes this long is a finding too (a hang would stall CI)


class SlowCase(Exception):
    """Raised by the watchdog inside a case that ran past CASE_LIMIT_S."""


def _watchdog(_signum: int, _frame: object) -> None:
    raise SlowCase(f"took more than {CASE_LIMIT_S:g} s")


LOIHI2_TOML = (resources.files("neurodeploy.hw_profiles") / "loihi2.toml").read_text(encoding="utf-8")


class Tally:
    """Inputs tried, clean successes, distinct error messages and escaped exceptions per group."""

    def __init__(self) -> None:
        self.tried: collections.Counter[str] = collections.Counter()
        self.ok: collections.Counter[str] = collections.Counter()
        self.messages: dict[str, set[str]] = collections.defaultdict(set)
        self.escapes: dict[tuple[str, str, str], list[str]] = {}

    def attempt(self, group: str, case: str, fn: Callable[[], object]) -> None:
        self.tried[group] += 1
        if TRACE:  # a crash (not an exception) then shows the last case on stderr
            print(f"[{group}] {case}", file=sys.stderr, flush=True)
        previous = signal.signal(signal.SIGALRM, _watchdog)
        signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                fn()
            self.ok[group] += 1
        except NeurodeployError as exc:
            self.messages[group].add(re.sub(r"/\S+|-?\d[\d.e+-]*", "#", exc.what))  # paths and numbers folded
        except Exception as exc:  # noqa: BLE001 - this is what the fuzzer hunts
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "test_fuzz" not in f.filename]
            ours = [f for f in frames if "site-packages" not in f.filename] or frames
            where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
            key = (group, type(exc).__name__, where)
            self.escapes.setdefault(key, []).append(f"{case}: {exc}"[:300])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def summary(self) -> str:
        lines = [f"{'group':<14}{'tried':>7}{'ok':>6}{'errors':>8}{'distinct msgs':>15}"]
        for g in self.tried:
            lines.append(
                f"{g:<14}{self.tried[g]:>7}{self.ok[g]:>6}{self.tried[g] - self.ok[g]:>8}{len(self.messages[g]):>15}"
            )
        distinct = len(set().union(*self.messages.values())) if self.messages else 0
        escaped = sum(len(v) for v in self.escapes.values())
        lines.append(
            f"total: {sum(self.tried.values())} inputs, {distinct} distinct error messages, "
            f"{escaped} escaped exceptions at {len(self.escapes)} distinct places"
        )
        for (group, name, where), cases in self.escapes.items():
            lines.append(f"  ESCAPE [{group}] {name} at {where} x{len(cases)}: {cases[0]}")
        return "\n".join(lines)


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    buf = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        idx = rng.integers(0, len(buf), rng.integers(1, 17))
        for i in idx:
            buf[i] ^= 1 << int(rng.integers(8))
        return bytes(buf), f"flip {len(idx)} bits"
    if kind == 1:
        cut = int(rng.integers(0, len(buf)))
        return bytes(buf[:cut]), f"truncate to {cut}"
    if kind == 2:
        start, n = int(rng.integers(0, len(buf))), int(rng.integers(1, 256))
        buf[start : start + n] = rng.integers(0, 256, len(buf[start : start + n]), dtype=np.uint8).tobytes()
        return bytes(buf), f"scramble {n} bytes at {start}"
    return bytes(buf) + rng.integers(0, 256, int(rng.integers(1, 512)), dtype=np.uint8).tobytes(), "append junk"


BAD_VALUES: list[Callable[[int, np.random.Generator], object]] = [
    lambda n, r: np.full(n, np.nan),
    lambda n, r: np.full(n, np.inf),
    lambda n, r: -np.abs(r.normal(size=n)),
    lambda n, r: np.zeros(n),
    lambda n, r: np.zeros(0),
    lambda n, r: r.normal(size=n + 3),
    lambda n, r: r.normal(size=(n, 2)),
    lambda n, r: np.full(n, 1e308),
    lambda n, r: np.full(n, 1e-308),
    lambda n, r: np.array(b"text"),
    lambda n, r: np.arange(n, dtype=np.int64),
    lambda n, r: np.float64(-1.0),
]
NODE_TYPES = [
    "LIF",
    "CubaLIF",
    "IF",
    "LI",
    "CubaLI",
    "Affine",
    "Linear",
    "Scale",
    "Flatten",
    "Threshold",
    "Delay",
    "Conv2d",
    "Input",
    "Output",
    "NoSuchNode",
    "",
]


def _put(group: h5py.Group, key: str, data: object, **kwargs: object) -> None:
    if key in group:
        del group[key]
    group.create_dataset(key, data=data, **kwargs)


def _edit_nir(path: Path, rng: np.random.Generator) -> str:
    """One structural edit of a NIR HDF5 file: missing/extra/bad fields, node types, edges, shapes, metadata."""
    with h5py.File(path, "r+") as f:
        nodes = f["node/nodes"]
        name = sorted(nodes)[int(rng.integers(len(nodes)))]
        node = nodes[name]
        fields = [k for k in node if k != "type"]
        kind = int(rng.integers(8))
        if kind == 0 and fields:
            field = fields[int(rng.integers(len(fields)))]
            del node[field]
            return f"delete {name}/{field}"
        if kind == 1:
            node.require_dataset("unexpected", shape=(3,), dtype=float)
            return f"extra field in {name}"
        if kind == 2 and fields:
            field = fields[int(rng.integers(len(fields)))]
            size = int(np.asarray(node[field]).shape[0]) if np.asarray(node[field]).ndim else 1
            bad_idx = int(rng.integers(len(BAD_VALUES)))
            _put(node, field, BAD_VALUES[bad_idx](size, rng))
            return f"bad value #{bad_idx} in {name}/{field}"
        if kind == 3:
            new = NODE_TYPES[int(rng.integers(len(NODE_TYPES)))]
            _put(node, "type", new)
            return f"type of {name} -> {new!r}"
        if kind in (4, 5):
            edges = [tuple(e.decode() if isinstance(e, bytes) else e for e in pair) for pair in f["node/edges"][()]]
            names = sorted(nodes)
            choice = int(rng.integers(5))
            if choice == 0:
                edges.append((names[int(rng.integers(len(names)))], "ghost"))
            elif choice == 1 and edges:
                edges.pop(int(rng.integers(len(edges))))
            elif choice == 2:  # recurrent loop straight back into a neuron (or a linear node), no delay node
                edges.append((name, name))
            elif choice == 3:
                edges.append(("affine_1", "affine"))
            else:
                edges = edges[::-1] + [edges[0]] if edges else []
            _put(f["node"], "edges", np.array(edges, dtype=object).reshape(-1, 2), dtype=h5py.string_dtype())
            return f"edges edit {choice}"
        if kind == 6:
            shape = [[0], [-3], [10**12], [], [2, 3], [2**63 - 1]][int(rng.integers(6))]
            target = nodes["input" if rng.random() < 0.7 else "output"]
            _put(target, "shape", np.array(shape, dtype=np.int64))
            return f"shape -> {shape}"
        meta = f["node"].require_group("metadata")
        key = ["neurodeploy.dt", "neurodeploy.reset", "neurodeploy.reset_delay"][int(rng.integers(3))]
        _put(meta, key, [np.nan, -1.0, 0.0, "bogus", 1e300][int(rng.integers(5))])
        return f"metadata {key}"


def _edit_ndp(path: Path, rng: np.random.Generator) -> str:
    """One structural edit of an artifact, then a fresh checksum: what the reader sees past the checksum."""
    from neurodeploy.compiler import artifact

    with h5py.File(path, "r+") as f:
        groups: list[h5py.Group] = [f]
        f.visititems(lambda _n, o: groups.append(o) if isinstance(o, h5py.Group) else None)
        group = groups[int(rng.integers(len(groups)))]
        attrs = [k for k in group.attrs if k != "checksum"]
        datasets = [k for k in group if isinstance(group[k], h5py.Dataset)]
        kind = int(rng.integers(5))
        if kind == 0 and attrs:
            key = attrs[int(rng.integers(len(attrs)))]
            del group.attrs[key]
            what = f"drop attr {group.name}@{key}"
        elif kind == 1 and attrs:
            key = attrs[int(rng.integers(len(attrs)))]
            group.attrs[key] = [np.nan, -1, "{not json", "[]", 10**9, np.zeros((2, 2))][int(rng.integers(6))]
            what = f"bad attr {group.name}@{key}"
        elif kind == 2 and datasets:
            key = datasets[int(rng.integers(len(datasets)))]
            bad = BAD_VALUES[int(rng.integers(len(BAD_VALUES)))](int(np.size(group[key])), rng)
            _put(group, key, bad)
            what = f"bad dataset {group.name}/{key}"
        elif kind == 3 and len(group) and group.name != "/":
            key = sorted(group)[int(rng.integers(len(group)))]
            del group[key]
            what = f"drop {group.name}/{key}"
        else:
            group.create_group(f"extra{int(rng.integers(1000))}")
            what = f"extra group in {group.name}"
        digest = getattr(artifact, "_digest", None)
        if digest is not None:
            f.attrs["checksum"] = digest(f)
        return what


def _profile_text(rng: np.random.Generator) -> tuple[str, str]:
    lines = LOIHI2_TOML.splitlines()
    kind = int(rng.choice(4, p=[0.15, 0.55, 0.15, 0.15]))
    if kind == 0:
        i = int(rng.integers(len(lines)))
        return "\n".join(lines[:i] + lines[i + 1 :]), f"drop line {i}"
    if kind == 1:  # replace a value with a same-typed but extreme one, or a wrong-typed one
        idx = [i for i, line in enumerate(lines) if "value = " in line]
        i = idx[int(rng.integers(len(idx)))]
        new = [
            "0",
            "-1",
            "1",
            "2",
            "9",
            "10",
            "64",
            "1000000000",
            "10000000000000000000000",
            "nan",
            "inf",
            "-inf",
            "0.5",
            '"x"',
            "[]",
            "[0]",
            "[5, -5]",
            "[-100000000, 100000000]",
            "[0, 0]",
            "[-8, -8]",
            "[8, 8]",
            "true",
            "{}",
            '["subtract"]',
        ]
        value = new[int(rng.integers(len(new)))]
        lines[i] = re.sub(r"value = (\[[^\]]*\]|[^,}]+)", f"value = {value}", lines[i], count=1)
        return "\n".join(lines), f"line {i} value -> {value}"
    if kind == 2:
        data, what = _mutate_bytes(LOIHI2_TOML.encode(), rng)
        return data.decode("utf-8", errors="replace"), what
    extra = [
        "unknown = 1",
        '[limits]\nneurons_per_core = { value = 1, source = "intel_brief" }',
        "schema_version = 2",
        "[numerics.weight_bits]\nvalue = 8",
        'name = ""',
        'kind = "quantum"',
        '[limits]\nsynapse_memory_bits_per_core = { value = 1, source = "intel_brief" }',
    ]
    return LOIHI2_TOML + "\n" + extra[int(rng.integers(len(extra)))] + "\n", "append"


def _run_input(rng: np.random.Generator, n: int) -> tuple[object, dict, str]:
    shapes = [(10, 2, n), (10, n), (0, 2, n), (10, 0, n), (10, 2, n + 1), (n,), (), (10, 2, n, 1), (1, 1, 0)]
    dtypes = [bool, np.int8, np.uint64, np.float16, np.float64, np.complex64, np.str_, object, "datetime64[s]"]
    shape = shapes[int(rng.integers(len(shapes)))]
    dtype = dtypes[int(rng.integers(len(dtypes)))]
    value = [0, 1, 2, -1, 0.5, np.nan][int(rng.integers(6))]
    try:
        with np.errstate(all="ignore"):
            arr: object = np.full(shape, value).astype(dtype)
    except (TypeError, ValueError):
        arr = np.zeros(shape, dtype=bool)
    kwargs: dict = {}
    pick = int(rng.integers(10))
    if pick == 0:
        arr = {"input": arr, "extra": arr}
    elif pick == 1:
        arr = {"nope": arr}
    elif pick == 2:
        arr = [None, "spikes", [[1, 0]], 3.0][int(rng.integers(4))]
    elif pick == 3:
        kwargs["record"] = [("w",), ("spikes", "v", "u"), (), "spikes"][int(rng.integers(4))]
    elif pick == 4:
        kwargs["populations"] = [["ghost"], [], ["lif_1"], "lif"][int(rng.integers(4))]
    elif pick == 5:
        kwargs["backend"] = ["gpu", "", "EMULATOR"][int(rng.integers(3))]
    return arr, kwargs, f"shape {shape} dtype {np.dtype(dtype).str} value {value} pick {pick}"


def _hostile(base: Path, rng: np.random.Generator, tmp: Path, i: int) -> tuple[str, Callable[[], object]]:
    """One file built to hurt: data stored outside the file, a declared-huge dataset or convolution, a
    decompression bomb or an absurd .npy header. Each must be refused (never read, never allocated)."""
    from neurodeploy.limits import check_numpy_file

    pick = int(rng.integers(5))
    path = tmp / f"h{i % 8}.nir"
    shutil.copy(base / "m.nir", path)
    if pick in (0, 1):
        with h5py.File(path, "a") as f:
            names: list[str] = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.size > 1 else None)
            name = names[int(rng.integers(len(names)))]
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            if pick == 0:
                target = ["/dev/zero", "/etc/passwd", str(base / "m.ndp")][int(rng.integers(3))]
                f.create_dataset(name, shape=shape, dtype=dtype, external=[(target, 0, int(np.prod(shape)) * 8)])
                what = f"{name} stored in {target}"
            else:
                big = tuple(int(d) for d in rng.integers(10**4, 10**6, size=max(len(shape), 1)))
                f.create_dataset(name, shape=big, dtype=dtype, chunks=tuple(min(d, 64) for d in big),
                                 compression="gzip")  # fmt: skip
                what = f"{name} declared as {big}"
        return what, lambda: nd.compile(nd.load_nir(path), "loihi2")
    if pick == 2:
        side = int(rng.integers(5000, 10**6))
        conv = nir.Conv2d(input_shape=(side, side), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1, dilation=1,
                          groups=1, bias=np.zeros(2))  # fmt: skip
        nodes = {"input": nir.Input(np.array([1, side, side])), "conv": conv}
        nodes["output"] = nir.Output(np.array([2, side, side]))
        graph = nir.NIRGraph(nodes, [("input", "conv"), ("conv", "output")])
        return f"conv over {side} x {side}", lambda: nd.compile(graph, "loihi2", dt=1e-3)
    if pick == 3:
        bomb = tmp / f"bomb{i % 8}.npz"
        np.savez_compressed(bomb, input=np.zeros(int(rng.integers(5 << 30, 8 << 30)) // 1024, dtype=np.uint8))
        return "npz bomb", lambda: check_numpy_file(bomb)  # about 5-8 MiB, under a 4 MiB limit (set below)
    header = tmp / f"n{i % 8}.npy"
    shape = tuple(int(d) for d in rng.integers(10**3, 10**7, size=int(rng.integers(1, 4))))
    with header.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return f"npy header {shape}", lambda: check_numpy_file(header)


def _cases(base: Path, rng: np.random.Generator, tmp: Path) -> Iterator[tuple[str, str, Callable[[], object]]]:
    """Endless mix of cases, round-robin over the groups: (group, description, call)."""
    nir_bytes = (base / "m.nir").read_bytes()
    ndp_bytes = (base / "m.ndp").read_bytes()
    compiled = nd.load_compiled(base / "m.ndp")
    small = lif_graph(hidden=6)
    i = 0
    while True:
        i += 1
        data, what = _mutate_bytes(nir_bytes, rng)
        p = tmp / f"b{i % 8}.nir"
        p.write_bytes(data)
        yield "nir-bytes", what, lambda p=p: nd.compile(nd.load_nir(p), "loihi2")

        data, what = _mutate_bytes(ndp_bytes, rng)
        q = tmp / f"b{i % 8}.ndp"
        q.write_bytes(data)
        yield "ndp-bytes", what, lambda q=q: nd.run(nd.load_compiled(q), spikes(steps=5, batch=2))

        a = tmp / f"a{i % 8}.ndp"
        shutil.copy(base / "m.ndp", a)
        what = _edit_ndp(a, rng)
        yield "ndp-fields", what, lambda a=a: nd.run(nd.load_compiled(a), spikes(steps=5, batch=2))

        s = tmp / f"s{i % 8}.nir"
        shutil.copy(base / "m.nir", s)
        what = "; ".join(_edit_nir(s, rng) for _ in range(int(rng.integers(1, 3))))
        profile = "loihi2" if rng.random() < 0.8 else "ideal"
        yield "nir-fields", what, lambda s=s, profile=profile: nd.compile(nd.load_nir(s), profile)

        text, what = _profile_text(rng)
        t = tmp / f"p{i % 8}.toml"
        t.write_text(text, encoding="utf-8")
        yield "profile-toml", what, lambda t=t: (parse_profile(t.read_text()), nd.compile(small, str(t)))

        arr, kwargs, what = _run_input(rng, 5)
        yield "run-inputs", what, lambda arr=arr, kwargs=kwargs: nd.run(compiled, arr, **kwargs)

        kw = [
            {"dt": np.nan},
            {"dt": -1e-4},
            {"dt": 0.0},
            {"dt": 1e300},
            {"reset": "bogus"},
            {"rounding": "odd"},
            {"placement": {"ghost": [0]}},
            {"placement": {"lif": [-1]}},
            {"placement": {"lif": []}},
            {"sample_inputs": np.zeros((3, 2, 4))},
            {"dt": 1.0},
            {},
        ][int(rng.integers(12))]
        yield "compile-args", repr(kw), lambda kw=kw: nd.compile(lif_graph(hidden=4), "loihi2", **kw)

        what, call = _hostile(base, rng, tmp, i)
        yield "hostile", what, call


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-base")
    nir.write(str(folder / "m.nir"), lif_graph(hidden=6))
    nd.compile(lif_graph(hidden=6), "loihi2").save(folder / "m.ndp")
    return folder


def test_fuzz_api_only_raises_neurodeploy_error(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEURODEPLOY_MAX_INPUT_BYTES", "4M")  # the bombs stay small on disk and in memory
    tally = Tally()
    rng = np.random.default_rng(SEED)
    deadline = time.monotonic() + BUDGET_S
    for group, what, call in _cases(base, rng, tmp_path):
        tally.attempt(group, what, call)
        if time.monotonic() > deadline and sum(tally.tried.values()) >= 60:
            break
    print(f"\nfuzz seed {SEED}, budget {BUDGET_S:g} s\n{tally.summary()}")
    assert not tally.escapes, "exceptions other than NeurodeployError escaped (see the ESCAPE lines above)"
    assert all(tally.tried[g] > tally.ok[g] for g in tally.tried), "a group never hit an error: is it fuzzing?"


def test_a_file_that_crashes_hdf5_is_a_clean_error(tmp_path: Path):
    """tests/data/hdf5_crash.nir: a NIR file with 11 flipped bits whose reading segfaults libhdf5 2.0 / h5py 3.16."""
    crashing = Path(__file__).parent / "data" / "hdf5_crash.nir"
    with pytest.raises(NeurodeployError, match="corrupted|malformed"):
        nd.load_nir(crashing)
    artifact = tmp_path / "crash.ndp"
    artifact.write_bytes(crashing.read_bytes())
    with pytest.raises(NeurodeployError):
        nd.load_compiled(artifact)


CLI_CASES: list[tuple[list[str], str]] = [
    (["compile", "{base}/m.nir", "--dt", "abc", "-o", "{tmp}/out.ndp"], "--dt"),
    (["compile", "{base}/m.nir", "--bogus-flag", "-o", "{tmp}/out.ndp"], "No such option"),
    (["compile", "{base}", "-o", "{tmp}/out.ndp"], "folder"),
    (["compile", "{data}/hdf5_crash.nir", "-o", "{tmp}/out.ndp"], "NIR file"),
    (["compile", "{base}/m.nir", "-o", "{tmp}/no/such/dir/out.ndp"], "does not exist"),
    (["compile", "{base}/m.nir", "--rounding", "odd", "-o", "{tmp}/out.ndp"], "rounding"),
    (["run", "{base}/m.ndp", "-i", "{base}/m.nir", "-o", "{tmp}/out.npz"], "cannot read input spikes"),
    (["run", "{base}/m.ndp", "-o", "{tmp}/out.npz"], "Missing option"),
    (["inspect", "{base}/m.nir"], "not a neurodeploy compiled artifact"),
    (["report", "{base}/m.nir", "-o", "{tmp}/out.html"], "not a neurodeploy compiled artifact"),
    (["report", "{base}/m.ndp", "-o", "{tmp}/out.pdf"], "HTML"),
    (["profiles", "validate", "{base}/m.nir"], "cannot read profile"),
    (["profiles", "validate", "{base}"], "regular file"),
    (["no-such-verb"], "No such command"),
]


def test_fuzz_cli_bad_arguments_one_line_exit_2(base: Path, tmp_path: Path):
    """All cases run at once (they are independent processes), so the wall time is about one start-up."""
    env = {"COLUMNS": "120", "PATH": "/usr/bin:/bin"}
    procs = []
    for args, fragment in CLI_CASES:
        argv = [a.format(base=base, tmp=tmp_path, data=Path(__file__).parent / "data") for a in args]
        procs.append(
            (
                argv,
                fragment,
                subprocess.Popen(
                    [sys.executable, "-m", "neurodeploy.cli", *argv],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    problems = []
    for argv, fragment, proc in procs:
        out, err = proc.communicate(timeout=120)
        lines = err.strip().splitlines()
        if (
            proc.returncode != 2
            or len(lines) != 1
            or not lines[0].startswith("error: ")
            or fragment not in err
            or "Traceback" in out + err
            or out.strip()
        ):
            problems.append(f"{argv}: exit {proc.returncode}, stderr {err!r}, stdout {out[:200]!r}")
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    print(f"\nCLI: {len(CLI_CASES)} bad invocations, {len(problems)} problems, files left: {leftovers}")
    assert not problems, "\n".join(problems)
    assert leftovers == [], leftovers
