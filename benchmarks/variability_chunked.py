"""Chunked Monte Carlo over chip instances: throughput, worker peak memory against the budget, and identity.

The demo's DYNAP-SE2 network (snnTorch Yin-Yang, trained with the demo's 40 epochs, compiled for
``dynapse2`` as ``neurodeploy demo`` does, with the strict=False fallback) runs
``variability(..., max_memory=..., cluster=..., workers=..., store=...)`` on many sampled chips (default
10,000 on a local Dask cluster of 2 worker processes with a 2 GB budget each, no calibration). Measured:

- wall time and instances per second of the chunked run, and the chunks it used (read from the
  progress lines; the library's own plan, ``plan_chunks(instances, chunk_memory(...), budget, slots)``,
  is printed beside it with its estimate of a chunk's peak, ``RESERVE_BYTES + memory.bytes(count)``);
- the peak memory of every worker process, which the API does not report: a background thread polls
  ``/proc/<pid>/status`` (VmHWM, the kernel's peak resident set) of every descendant of this process, so it
  covers ``local`` and ``serial`` (this process, its peak reset through ``/proc/self/clear_refs`` first);
  workers of ``tcp://`` or ``slurm`` clusters are not children of this process and are not measured;
- identity: the first ``--check`` instances run again as one batched call (no budget, no cluster) must give
  exactly the per-instance accuracies of the chunked run (and after calibration, with ``--calibrate``).

Exit status 1 when the identity check fails or a worker's peak exceeds the budget.

    .venv/bin/python benchmarks/variability_chunked.py [--instances 10000] [--cluster local] [--workers 2]
        [--max-memory 2GB] [--calibrate] [--store DIR] [--fresh] [--check 256]
        [--epochs 40] [--samples 1000] [--quick]

``--quick``: 4 epochs, 200 instances, 200 test samples, a 320MB budget (so several chunks), check 64.
The store (default ``build/studies/variability_chunked``, ``..._quick`` with ``--quick``) keeps finished
chunks: a rerun of the same run reuses them (the timing then covers the rest only); ``--fresh`` deletes the
store's cell files first.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import neurodeploy as nd
from neurodeploy.studies.montecarlo import RESERVE_BYTES, chunk_memory, parse_memory, plan_chunks
from neurodeploy.studies.variability import VariabilityResult, variability

CALIBRATION_SAMPLES = 256  # as neurodeploy.demo: encoded training samples form the calibration probe
MiB = 1 << 20
STORE = Path("build") / "studies" / "variability_chunked"


def build(epochs: int, samples: int | None, seed: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, bool]:
    """The demo's dynapse2 network: (compiled, test spikes, test labels, calibration probe, strict)."""
    from neurodeploy.datasets import yin_yang_splits
    from neurodeploy.errors import CompileError
    from neurodeploy.training import train_yinyang_snntorch

    start = time.perf_counter()
    trained = train_yinyang_snntorch(epochs=epochs, seed=seed)
    print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f} s: float test accuracy "
          f"{100 * trained.test_accuracy:.1f} %")  # fmt: skip
    features, labels = yin_yang_splits()["test"]
    if samples is not None:
        features, labels = features[:samples], labels[:samples]
    spikes = trained.encoder.encode(features)
    graph = nd.from_torch(trained.module, spikes[:, 0], framework="snntorch")
    strict = True
    try:
        compiled = nd.compile(graph, "dynapse2", sample_inputs=spikes, sample_labels=labels)
    except CompileError as err:
        print(f"dynapse2 design rules violated ({err}); compiling with strict=False")
        strict = False
        compiled = nd.compile(graph, "dynapse2", sample_inputs=spikes, sample_labels=labels, strict=False)
    train_features, _ = yin_yang_splits()["train"]
    pick = np.random.default_rng(seed).choice(len(train_features), CALIBRATION_SAMPLES, replace=False)
    probe = trained.encoder.encode(train_features[pick])
    return compiled, spikes, np.asarray(labels), probe, strict


def _status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status in KiB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(root: int) -> set[int]:
    """Every live process whose parent chain leads to ``root`` (a scan of /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


class PeakMonitor:
    """Polls the peak resident memory (VmHWM) of this process's descendants from a background thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_kib: dict[int, int] = {}  # pid -> largest VmHWM seen
        self.rss_kib: dict[int, int] = {}  # pid -> VmRSS of the latest reading
        self.cmd: dict[int, str] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-monitor", daemon=True)

    def __enter__(self) -> PeakMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> dict[int, int]:
        """Read every descendant's VmHWM now; returns pid -> KiB of this reading."""
        now = {}
        for pid in descendants(os.getpid()):
            hwm = _status_kib(pid, "VmHWM")
            if hwm is None:
                continue
            if pid not in self.cmd:
                self.cmd[pid] = _cmdline(pid)
            now[pid] = hwm
            self.rss_kib[pid] = _status_kib(pid, "VmRSS") or 0
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), hwm)
        self.samples += 1
        return now

    def workers(self) -> dict[int, int]:
        """Peak KiB of the worker processes (descendants other than multiprocessing's helpers)."""
        helpers = ("resource_tracker", "forkserver", "semaphore_tracker")
        return {pid: kib for pid, kib in self.peak_kib.items() if not any(h in self.cmd[pid] for h in helpers)}


def reset_own_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def parse_sigma(text: str | None) -> dict[str, float] | None:
    """``v_threshold=0.05,weight=0.1`` -> {"v_threshold": 0.05, "weight": 0.1}."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out


def first_difference(chunked: list[float], batched: list[float]) -> str | None:
    """None when equal, else where and how they first differ."""
    for k, (a, b) in enumerate(zip(chunked, batched, strict=True)):
        if a != b:
            return f"instance {k}: chunked {a!r} vs batched {b!r}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=None, help="chip instances (default 10000, quick 200)")
    parser.add_argument("--cluster", default="local", help="serial, local, tcp://host:port or slurm")
    parser.add_argument("--cluster-config", default=None, help="TOML file with a [slurm] table")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-memory", default=None, help="budget per worker (default 2GB, quick 320MB)")
    parser.add_argument("--calibrate", action="store_true", help="also calibrate every instance (demo probe)")
    parser.add_argument("--store", type=Path, default=None, help="finished chunks (default build/studies/...)")
    parser.add_argument("--fresh", action="store_true", help="delete the store's cell files before the run")
    parser.add_argument("--check", type=int, default=None, help="instances rerun batched (default 256, quick 64)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 40 as the demo, quick 4)")
    parser.add_argument("--samples", type=int, default=None, help="test samples (default all 1000, quick 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigma", default=None, help="mismatch sigma overrides, e.g. v_threshold=0.05,weight=0.1")
    parser.add_argument("--target", type=float, default=0.9, help="accuracy for the yield")
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    parser.add_argument("--quick", action="store_true", help="4 epochs, 200 instances, 200 samples, 320MB, check 64")
    args = parser.parse_args()
    quick = args.quick
    instances = args.instances if args.instances is not None else (200 if quick else 10000)
    max_memory_text = args.max_memory or ("320MB" if quick else "2GB")
    check = min(args.check if args.check is not None else (64 if quick else 256), instances)
    epochs = args.epochs if args.epochs is not None else (4 if quick else 40)
    samples = args.samples if args.samples is not None else (200 if quick else None)
    budget = parse_memory(max_memory_text)
    sigma = parse_sigma(args.sigma)

    compiled, spikes, labels, probe, strict = build(epochs, samples, args.seed)
    steps, batch, _ = spikes.shape
    print(f"network: dynapse2 ({'fits the design rules' if strict else 'strict=False'}), "
          f"{batch} test samples x {steps} steps; sigma: {sigma or 'from the profile'}")  # fmt: skip

    memory = chunk_memory(compiled, spikes, args.calibrate, probe if args.calibrate else None)
    slots = 1 if args.cluster == "serial" else args.workers
    planned = plan_chunks(instances, memory, budget, slots)
    largest = max(count for _, count in planned)
    estimate = RESERVE_BYTES + memory.bytes(largest)
    per = (memory.bytes(largest) - memory.bytes(1)) / max(largest - 1, 1)  # the estimate's slope per instance
    print(f"library estimate: {memory.bytes(1) / MiB:.1f} MiB for one instance, {per / MiB:.2f} MiB per further "
          f"instance, + {RESERVE_BYTES / MiB:.0f} MiB reserve; plan for "
          f"{slots} slot(s): {len(planned)} chunks of up to {largest} instances, est. peak "
          f"{estimate / MiB:.0f} MiB of the {budget / MiB:.0f} MiB budget")  # fmt: skip

    store: Path = args.store or STORE.with_name(STORE.name + "_quick" if quick else STORE.name)
    old = sorted(store.glob("*.json")) if store.is_dir() else []
    if old and args.fresh:
        for path in old:
            path.unlink()
        print(f"--fresh: removed {len(old)} cell files from {store}")
    elif old:
        print(f"note: {store} holds {len(old)} cell files; any of this very run (same network, inputs, seed, "
              "chunks) are reused and not timed (--fresh to start over)")  # fmt: skip

    seen: dict[str, Any] = {"chunks": None, "last": 0.0, "reused": 0, "idle": None, "after": None}
    monitor = PeakMonitor()
    t0 = time.perf_counter()

    def tell(stage: str, done: int, total: int) -> None:
        found = re.search(r"(\d+) chunks x (\d+) sigma points", stage)
        first = found is not None and seen["chunks"] is None
        if found:
            seen["chunks"] = int(found.group(1))
            if seen["idle"] is None:  # workers are up, no chunk has run yet: their idle footprint
                seen["idle"] = monitor.poll()
            if done == total and seen["after"] is None:  # every chunk done, workers still up: settled RSS
                monitor.poll()
                seen["after"] = dict(monitor.rss_kib)
        reused = re.search(r"\((\d+) from the store\)", stage)
        if reused:
            seen["reused"] = int(reused.group(1))
        now = time.perf_counter()
        if now - seen["last"] >= args.progress_every or done == total or first or not found:
            seen["last"] = now
            print(f"[{now - t0:7.1f} s] {stage} ({done}/{total})", flush=True)

    serial_peak_reset = args.cluster == "serial" and reset_own_peak()
    with monitor:
        start = time.perf_counter()
        res: VariabilityResult = variability(
            compiled, spikes, labels, instances=instances, seed=args.seed, sigma=sigma, target=args.target,
            calibrate=args.calibrate, probe=probe if args.calibrate else None, progress=tell,
            max_memory=budget, cluster=args.cluster, workers=args.workers, cluster_config=args.cluster_config,
            store=store,
        )  # fmt: skip
        wall = time.perf_counter() - start
    own_peak = _status_kib(os.getpid(), "VmHWM") if serial_peak_reset else None

    print(f"\nbatched check: instances 0..{check - 1} in one call, no budget, no cluster", flush=True)
    start = time.perf_counter()
    ref = variability(compiled, spikes, labels, instances=check, seed=args.seed, sigma=sigma, target=args.target,
                      calibrate=args.calibrate, probe=probe if args.calibrate else None)  # fmt: skip
    check_wall = time.perf_counter() - start
    problems = [d for d in [first_difference(res.accuracy[:check], ref.accuracy)] if d]
    if args.calibrate:
        after = first_difference(res.calibration["accuracy"][:check], ref.calibration["accuracy"])
        problems += [f"after calibration, {after}"] if after else []
    identical = not problems

    workers = monitor.workers()
    if args.cluster == "serial":
        measured = {os.getpid(): own_peak} if own_peak is not None else {}
        where = "this process (serial; peak reset before the run)"
    else:
        measured = workers
        where = f"{len(workers)} worker process(es), polled {monitor.samples} times"
    peak_kib = max(measured.values(), default=None)
    over = peak_kib is not None and peak_kib * 1024 > budget
    chunks = seen["chunks"] if seen["chunks"] is not None else len(planned)

    print("\n--- results ---")
    print(f"instances: {res.instances} ({res.samples} samples each, seed {res.seed}, profile {res.profile})")
    reused = f"; {seen['reused']} of them from the store, not timed" if seen["reused"] else ""
    print(f"chunks: {chunks} on {args.cluster} with {slots} worker(s) (library plan: {len(planned)} of up "
          f"to {largest}){reused}")  # fmt: skip
    print(f"wall time: {wall:.1f} s chunked ({res.wall_seconds:.1f} s inside variability); "
          f"{instances / wall:.1f} instances/s")  # fmt: skip
    print(f"batched check of {check}: {check_wall:.1f} s, {check / check_wall:.1f} instances/s in one process")
    print(f"nominal accuracy: {100 * res.nominal_accuracy:.2f} %")
    print(f"accuracy over instances: mean {100 * res.mean:.2f} %, std {100 * res.std:.2f} %, worst "
          f"{100 * res.worst:.2f} % (instance {res.worst_instance}); yield at {100 * res.target:.0f} %: "
          f"{100 * res.yield_at_target:.2f} %")  # fmt: skip
    if args.calibrate:
        cal = res.calibration
        print(f"after calibration: mean {100 * cal['mean']:.2f} %, std {100 * cal['std']:.2f} %, worst "
              f"{100 * cal['worst']:.2f} %, yield {100 * cal['yield_at_target']:.2f} %, recovered "
              f"{100 * cal['recovered']:.0f} % of the gap")  # fmt: skip
    if peak_kib is None:
        print(f"worker peak memory: not measured ({args.cluster} workers are not children of this process)")
    else:
        print(f"worker peak memory (VmHWM, {where}): max {peak_kib / 1024:.0f} MiB of the {budget / MiB:.0f} MiB "
              f"budget ({100 * peak_kib * 1024 / budget:.0f} %): {'EXCEEDED' if over else 'within'}; "
              f"library estimate for a chunk {estimate / MiB:.0f} MiB")  # fmt: skip
        idle, after = seen["idle"] or {}, seen["after"] or {}
        for pid, kib in sorted(measured.items()):
            before = f", {idle[pid] / 1024:.0f} MiB before its first chunk" if pid in idle else ""
            settled = f", RSS {after[pid] / 1024:.0f} MiB after the last chunk" if pid in after else ""
            print(f"  pid {pid}: peak {kib / 1024:.0f} MiB{before}{settled}")
        for what, base in (("peak - idle (imports included)", idle), ("peak - RSS after the last chunk", after)):
            grown = [measured[p] - base[p] for p in measured if p in base]
            if grown and largest:
                real = max(grown) * 1024 / largest
                print(f"  per instance, {what}: {real / MiB:.2f} MiB (chunks of {largest}) vs estimate "
                      f"{per / MiB:.2f} MiB ({per / max(real, 1):.1f}x)")  # fmt: skip
    helpers = {p: k for p, k in monitor.peak_kib.items() if p not in workers}
    for pid, kib in sorted(helpers.items()):
        print(f"  (helper pid {pid}: {kib / 1024:.0f} MiB, {monitor.cmd[pid][:60]})")
    verdict = "identical" if identical else "DIFFERENT: " + "; ".join(problems)
    print(f"identity check (first {check} instances, chunked vs batched): {verdict}")
    return 0 if identical and not over else 1


if __name__ == "__main__":
    sys.exit(main())
