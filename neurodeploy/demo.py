"""``neurodeploy demo``: the whole pipeline on embedded defaults, with nothing downloaded.

Train a small snnTorch network on Yin-Yang -> export to NIR -> compile for Loihi 2 -> run the test set on
our emulator and on Lava -> report float vs chip accuracy, spike identity, resources and wall times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from neurodeploy.cli_common import progress_bar

OUT_DIR = Path("out") / "demo"


@dataclass
class DemoResult:
    float_accuracy: float
    ideal_accuracy: float
    chip_accuracy: float
    lava_accuracy: float | None = None
    lava_identical: bool | None = None
    lava_mismatches: int | None = None
    wall_seconds: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    variability: dict[str, Any] = field(default_factory=dict)
    learning: dict[str, Any] = field(default_factory=dict)


def _accuracy(counts: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(counts.argmax(axis=-1) == labels))


def run_demo(
    console: Console, quick: bool = False, with_lava: bool = True, seed: int = 0, out_dir: Path = OUT_DIR
) -> DemoResult:
    """Run the demo, print its figures, and write the NIR file and the artifact under ``out_dir``."""
    import nir

    import neurodeploy as nd
    from neurodeploy.datasets import yin_yang_splits
    from neurodeploy.reports import cores_table, layers_table
    from neurodeploy.training import train_yinyang_snntorch

    walls: dict[str, float] = {}
    epochs = 8 if quick else 40
    console.rule("[bold]neurodeploy demo[/]: snnTorch -> NIR -> Loihi 2 -> emulator and Lava")
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn())  # fmt: skip
    with progress_bar(False, console, *columns) as bar:
        task = bar.add_task("training on Yin-Yang", total=epochs, status="")

        def progress(epoch: int, loss: float, val: float) -> None:
            bar.update(task, advance=1, status=f"loss {loss:.3f}  val {100 * val:.1f} %")

        trained = train_yinyang_snntorch(epochs=epochs, seed=seed, progress=progress)
    walls["train"] = time.perf_counter() - start

    features, labels = yin_yang_splits()["test"]
    spikes = trained.encoder.encode(features)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    graph = nd.from_torch(trained.module, spikes[:, 0], framework="snntorch")
    nir.write(str(out_dir / "yinyang.nir"), graph)
    compiled = nd.compile(graph, "loihi2", sample_inputs=spikes, sample_labels=labels)
    artifact = compiled.save(out_dir / "yinyang_loihi2.ndp")
    walls["export + compile"] = time.perf_counter() - start

    ideal = nd.run(nd.compile(graph, "ideal"), spikes)
    walls["ideal emulator"] = ideal.wall_seconds
    chip = nd.run(compiled, spikes, populations=None)
    walls["loihi2 emulator"] = chip.wall_seconds
    result = DemoResult(
        float_accuracy=trained.test_accuracy,
        ideal_accuracy=_accuracy(ideal.counts(), labels),
        chip_accuracy=_accuracy(chip.counts(), labels),
        wall_seconds=walls,
        report=compiled.report,
    )
    if with_lava:
        from neurodeploy.emulator.backends.lava import available

        ok, reason = available()
        if ok:
            with console.status(f"running {spikes.shape[1]} test samples on Lava (Loihi2SimCfg fixed_pt)"):
                lava = nd.run(compiled, spikes, backend="lava")
            walls["lava"] = lava.wall_seconds
            result.lava_accuracy = _accuracy(lava.counts(), labels)
            result.lava_mismatches = sum(int(np.count_nonzero(lava.spikes[n] != chip.spikes[n])) for n in lava.spikes)
            result.lava_identical = result.lava_mismatches == 0
        else:
            console.print(f"[yellow]Lava backend skipped[/]: {reason}")

    _print(console, result, trained, compiled.report, spikes.shape, artifact)
    console.print(cores_table(compiled.report))
    console.print(layers_table(compiled.report))
    start = time.perf_counter()
    result.variability = _variability(console, graph, spikes, labels, seed, trained.encoder)
    walls["dynapse2 variability"] = time.perf_counter() - start
    start = time.perf_counter()
    result.learning = _on_chip_learning(console, out_dir, quick, seed)
    walls["on-chip Kolen-Pollack"] = time.perf_counter() - start
    return result


def _on_chip_learning(console: Console, out_dir: Path, quick: bool, seed: int) -> dict:
    """Kolen-Pollack learning on the loihi2 engine: accuracy and ∠(B, Wᵀ) per epoch, with the curve page."""
    from neurodeploy.api_learn import learn
    from neurodeploy.atomic import atomic_write
    from neurodeploy.learning.report import learn_html

    epochs = 4 if quick else 12
    table = Table(
        title=f"On-chip learning: Kolen-Pollack on the loihi2 learning engine (Yin-Yang, 4-64-3, 3 chips, "
        f"{epochs} epochs)",
        title_justify="left",
    )
    for col in ("epoch", "test accuracy (mean of 3)", "angle B vs W^T", "angle delta vs BP"):
        table.add_column(col, justify="right")
    with progress_bar(True, console) as bar:
        job = bar.add_task("Kolen-Pollack on chip", total=epochs)
        res = learn(
            "kp",
            "loihi2",
            "yinyang",
            seeds=3,
            seed=seed,
            epochs=epochs,
            progress=lambda e, n, entry: bar.update(
                job, completed=e, description=f"Kolen-Pollack on chip: {100 * np.mean(entry['test_accuracy']):.1f} %"
            ),
        )
    for h in res.history:
        table.add_row(
            str(h["epoch"]),
            f"{100 * np.mean(h['test_accuracy']):.1f} %",
            f"{np.mean(h['weight_angle']['B1']):.1f} deg",
            f"{np.mean(h['signal_angle']['h1']):.1f} deg",
        )
    console.print(table)
    page = out_dir / "learning_kp.html"
    text = learn_html([res.to_dict()])

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(page, write, example=page.name)
    rule = res.engine.get("rules", {}).get("input->if0", {})
    console.print(f"alignment curve: [bold]{page}[/]; engine rule on input->if0: dt = {rule.get('dt')}")
    host = [name for name, entry in res.provenance.items() if entry.get("host_ops_per_sample")]
    console.print(f"signals computed on the host: {', '.join(host) or 'none'}")
    return {**res.final, "page": str(page)}


CALIBRATION_SAMPLES = 256  # training-set samples in the calibration probe


def _variability(console: Console, graph: Any, spikes: np.ndarray, labels: np.ndarray, seed: int, encoder: Any) -> dict:
    """64 sampled DYNAP-SE2 chips of the same graph: how much accuracy device mismatch costs, and calibration.

    The calibration probe is encoded training samples: the stimuli a deployment has at hand and that
    drive each neuron where the task does (the test set is never used to trim).
    """
    import neurodeploy as nd
    from neurodeploy.datasets import yin_yang_splits
    from neurodeploy.errors import CompileError
    from neurodeploy.studies.variability import variability

    strict = True
    try:
        dyn = nd.compile(graph, "dynapse2", sample_inputs=spikes, sample_labels=labels)
    except CompileError as err:
        console.print(f"[yellow]dynapse2 design rules violated[/] ({err}); compiling with strict=False")
        strict = False
        dyn = nd.compile(graph, "dynapse2", sample_inputs=spikes, sample_labels=labels, strict=False)
    train_features, _ = yin_yang_splits()["train"]
    pick = np.random.default_rng(seed).choice(len(train_features), CALIBRATION_SAMPLES, replace=False)
    probe = encoder.encode(train_features[pick])
    with progress_bar(True, console) as bar:
        job = bar.add_task("dynapse2: 64 chips", total=1)

        def tell(stage: str, done: int, total: int) -> None:
            bar.update(job, completed=done, total=total, description=f"dynapse2: {stage}")

        res = variability(
            dyn, spikes, labels, instances=64, seed=seed, target=0.9, calibrate=True, probe=probe, progress=tell
        )
    cal = res.calibration
    improved = int(np.sum(np.asarray(cal["accuracy"]) > np.asarray(res.accuracy)))
    table = Table(
        title=f"DYNAP-SE2 variability: 64 sampled chips (profile mismatch, sigma 0.1), "
        f"{'fits the design rules' if strict else 'strict=False: design rules violated'}",
        title_justify="left",
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("nominal chip accuracy (dynapse2, 4-bit weights)", f"{100 * res.nominal_accuracy:.1f} %")
    table.add_row("accuracy over chips, mean +- std", f"{100 * res.mean:.1f} +- {100 * res.std:.1f} %")
    table.add_row("worst chip", f"{100 * res.worst:.1f} %")
    table.add_row("yield at 90 % accuracy", f"{100 * res.yield_at_target:.0f} %")
    table.add_row(
        f"after threshold + bias calibration ({CALIBRATION_SAMPLES} training samples as probe), mean +- std",
        f"{100 * cal['mean']:.1f} +- {100 * cal['std']:.1f} %",
    )
    table.add_row(
        "after calibration: worst / yield at 90 %", f"{100 * cal['worst']:.1f} % / {100 * cal['yield_at_target']:.0f} %"
    )
    table.add_row("share of the mean gap to nominal recovered", f"{100 * cal['recovered']:.0f} %")
    table.add_row("chips more accurate after calibration", f"{improved} of {res.instances}")
    table.add_row("wall time", f"{res.wall_seconds:.2f} s")
    console.print(table)
    return {**res.to_dict(), "strict": strict}


def _print(console: Console, r: DemoResult, trained: Any, report: dict, shape: tuple, artifact: Path) -> None:
    steps, samples, _ = shape
    table = Table(
        title=f"Yin-Yang test set: {samples} samples x {steps} steps, "
        f"network {trained.encoder.n_inputs}-{trained.hidden}-3 LIF",
        title_justify="left",
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("float accuracy (snnTorch)", f"{100 * r.float_accuracy:.1f} %")
    table.add_row("float reference (ideal profile, emulator)", f"{100 * r.ideal_accuracy:.1f} %")
    table.add_row("chip accuracy (loihi2, emulator)", f"{100 * r.chip_accuracy:.1f} %")
    table.add_row("change on chip", f"{100 * (r.chip_accuracy - r.float_accuracy):+.1f} points")
    if r.lava_accuracy is not None:
        table.add_row("chip accuracy (loihi2, Lava)", f"{100 * r.lava_accuracy:.1f} %")
        verdict = "[green]identical[/]" if r.lava_identical else f"[red]{r.lava_mismatches} spikes differ[/]"
        table.add_row("Lava vs emulator, every spike of every layer", verdict)
    agree = report.get("evaluation", {}).get("layers", {})
    for name, layer in agree.items():
        table.add_row(f"spike agreement with float, {name}", f"{100 * layer['spike_agreement']:.2f} %")
    for what, seconds in r.wall_seconds.items():
        table.add_row(f"wall time: {what}", f"{seconds:.2f} s")
    if "lava" in r.wall_seconds and r.wall_seconds["loihi2 emulator"] > 0:
        ratio = r.wall_seconds["lava"] / r.wall_seconds["loihi2 emulator"]
        table.add_row("emulator speed-up over Lava", f"{ratio:.0f}x")
    console.print(table)
    console.print(
        f"wrote {artifact} (and yinyang.nir beside it); the network was trained with 8-bit fake "
        "quantization of its weights in its last epochs"
    )
