"""The study verbs: ``variability`` (accuracy spread over sampled chips) and ``learn`` (on-chip learning
rules), plus reading their JSON back for ``report``. ``neurodeploy.cli`` registers them on the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from neurodeploy.cli_common import _emit_json, _load_spikes, console, progress_bar
from neurodeploy.cli_study import ClusterConfigOpt, ClusterOpt, StoreOpt, WorkersOpt
from neurodeploy.errors import NeurodeployError
from neurodeploy.textsafe import shown


def _read_json(path: Path, kind: str, key: str) -> dict[str, Any]:
    """A JSON file written by another verb, checked for the field the report needs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NeurodeployError(
            f"cannot read {kind} JSON: {exc}", str(path), f"pass the file `{kind} -o` wrote"
        ) from None
    if not isinstance(data, dict) or key not in data:
        raise NeurodeployError(f"not a {kind} result: no {key!r} field", str(path), f"pass the file `{kind} -o` wrote")
    return data


def _study_sections(variability_json: Path | None, learning_json: list[Path]) -> tuple[Any, Any]:
    """The report's mismatch and learning sections from the JSON of `variability -o` and `learn -o`."""
    from neurodeploy.learning.report import curves_of

    mismatch = None
    if variability_json is not None:
        v = _read_json(variability_json, "neurodeploy variability", "accuracy")
        mismatch = {f"{v.get('profile', 'chip')}: {v.get('instances', len(v['accuracy']))} instances": v["accuracy"]}
        cal = v.get("calibration") or {}
        if cal.get("accuracy"):
            mismatch["after calibration"] = cal["accuracy"]
    learning: dict[str, Any] = {}
    for path in learning_json:
        r = _read_json(path, "neurodeploy learn", "history")
        c = r.get("config", {})
        for label, per_metric in curves_of(r).items():
            learning[
                f"{label} on {c.get('profile', '?')}" + (f", σ {c['mismatch']:g}" if c.get("mismatch") else "")
            ] = per_metric
    return mismatch, learning or None


def _parse_sigmas(items: list[str]) -> dict[str, float]:
    """``name=value`` pairs of --sigma (name may carry @scope) as a dict; anything else is a user error."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name.strip() or not (number >= 0 and number < 10):
            raise NeurodeployError(
                f"bad --sigma {item!r}: expected name=value with a relative sigma >= 0",
                "--sigma",
                "write e.g. --sigma weight=0.05 or --sigma tau_mem@core=0.1",
            )
        out[name.strip()] = number
    return out


def variability_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file (an analog profile, e.g. dynapse2).")],
    inputs: Annotated[Path, typer.Option("--inputs", "-i", help=".npy spikes (time, batch, neurons) or .npz.")],
    labels: Annotated[Path, typer.Option(help="Class per sample (.npy).")],
    instances: Annotated[int, typer.Option(min=1, help="Chip instances to sample.")] = 64,
    sigma: Annotated[
        list[str] | None, typer.Option(help="Override a mismatch sigma: name=value, name@scope=value (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Sampling seed; instance k is the same in any batch.")] = 0,
    target: Annotated[float, typer.Option(help="Accuracy a chip must reach to count towards the yield.")] = 0.9,
    sweep: Annotated[str | None, typer.Option(help="Comma-separated sigma multipliers, e.g. 0,0.5,1,2.")] = None,
    calibrate: Annotated[
        bool, typer.Option(help="Also trim each instance's thresholds and biases to the nominal chip; report the gain.")
    ] = False,
    probe: Annotated[
        Path | None,
        typer.Option(
            help="Probe spikes for --calibrate (.npy, like --inputs; e.g. encoded training samples, never "
            "the test set). Default: a fixed random probe."
        ),
    ] = None,
    lava_check: Annotated[
        int, typer.Option(min=0, help="Also run the first K instances on Lava (floating_pt) and report agreement.")
    ] = 0,
    max_memory: Annotated[
        str | None,
        typer.Option(help="Memory per worker, e.g. 2GB: instances run in chunks that fit it, spread over workers."),
    ] = None,
    cluster: ClusterOpt = None,
    workers: WorkersOpt = None,
    cluster_config: ClusterConfigOpt = None,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the result as JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sample chip instances from the profile's mismatch model; report accuracy spread and yield.

    Example: neurodeploy variability model.ndp --inputs spikes.npy --labels labels.npy --instances 64

    Many instances: --instances 10000 --max-memory 2GB --cluster local --store runs/mc1 (resumable).
    """
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.atomic import atomic_write, refuse_overwriting_inputs
    from neurodeploy.studies.variability import variability

    refuse_overwriting_inputs(output, artifact, inputs, labels, probe)

    overrides = _parse_sigmas(sigma or [])
    multipliers: list[float] = []
    for part in (sweep or "").split(","):
        if part.strip():
            try:
                multipliers.append(float(part))
            except ValueError:
                raise NeurodeployError(f"bad --sweep value {part!r}", "--sweep", "write e.g. 0,0.5,1,2") from None
    compiled = nd.load_compiled(artifact)
    data = _load_spikes(inputs)
    truth = _load_spikes(labels, "labels")
    if isinstance(truth, dict) or np.ndim(truth) != 1:
        raise NeurodeployError("labels must be one integer per sample", str(labels), "save a 1-D array")
    if probe is not None and not calibrate:
        raise NeurodeployError("--probe is only used with --calibrate", "--probe", "add --calibrate or drop --probe")
    probe_spikes = _load_spikes(probe, "probe spikes") if probe is not None else None
    args = (compiled, data, truth, instances, seed, overrides, target, multipliers, calibrate)
    kwargs = {"lava_check": lava_check, "probe": probe_spikes, "max_memory": max_memory, "cluster": cluster,
              "workers": workers, "cluster_config": cluster_config, "store": store}  # fmt: skip
    with progress_bar() as bar:
        job = bar.add_task(f"{artifact.name}: nominal chip", total=1)

        def tell(stage: str, done: int, total: int) -> None:
            bar.update(job, completed=done, total=total, description=f"{artifact.name}: {stage}")

        result = variability(*args, **kwargs, progress=tell)
    report = result.to_dict()
    if output is not None:
        text = json.dumps(report, indent=2) + "\n"

        def write(tmp: str) -> None:
            Path(tmp).write_text(text, encoding="utf-8")

        atomic_write(output, write, example="variability.json")
    if as_json:
        _emit_json(report)
        return
    q = result.quantiles
    console.print(
        f"[bold]{artifact.name}[/] on {result.profile}: {result.instances} instances, "
        f"{result.samples} samples, seed {result.seed}"
    )
    console.print(
        f"accuracy nominal {result.nominal_accuracy:.3f}; instances mean {result.mean:.3f} "
        f"± {result.std:.3f}, worst {result.worst:.3f} (instance {result.worst_instance}); "
        f"quantiles 5/25/50/75/95 %: " + " / ".join(f"{v:.3f}" for v in q.values())
    )
    console.print(f"yield at accuracy >= {result.target:g}: {result.yield_at_target:.1%}")
    for name, r in result.rates.items():
        console.print(f"  rate {name}: {r['mean']:.4f} ± {r['std']:.4f} spikes/neuron/step over instances")
    for p in result.sweep:
        console.print(
            f"  sigma x{p['multiplier']:g}: mean {p['mean']:.3f} ± {p['std']:.3f}, worst "
            f"{p['worst']:.3f}, yield {p['yield_at_target']:.1%}"
        )
    if result.calibration:
        c = result.calibration
        console.print(
            f"after calibration: mean {c['mean']:.3f} ± {c['std']:.3f}, worst {c['worst']:.3f}, yield "
            f"{c['yield_at_target']:.1%}; gap to nominal {c['gap_before']:.3f} -> {c['gap_after']:.3f} "
            f"({c['recovered']:.0%} recovered; {c['trim']['trim_bits']}-bit threshold trims "
            f"over ±{c['trim']['trim_range']:.0%}, plus bias trims where the profile has them)"
        )
    if result.lava:
        lv = result.lava
        console.print(
            f"Lava cross-check ({lv['backend']}), instances 0..{lv['instances'] - 1}: spikes identical in "
            f"{lv['spikes_identical_in']}/{lv['instances']}, accuracy identical in "
            f"{lv['accuracy_identical_in']}/{lv['instances']}; largest u, v difference {lv['max_rel_u']:.1e}, "
            f"{lv['max_rel_v']:.1e} of their scale"
        )
    if output is not None:
        console.print(f"wrote [bold]{shown(output)}[/]")


def learn_cmd(
    rule: Annotated[
        str,
        typer.Option(
            help="bp, frozen, fa, dfa, drtp, sign, kp, wm, ia, pal, sal, eprop, a .toml file of a user-defined "
            "rule (name, forward, feedback, source, summary; docs: concepts/custom-rules.md), or a learning "
            "system: gle, microcircuit, sampling, ar, pc, di (options through --set)."
        ),
    ],
    profile: Annotated[
        str | None, typer.Option(help="loihi2 (fixed point) or ideal (float); default loihi2 (chip), ideal (paper).")
    ] = None,
    variant: Annotated[
        str,
        typer.Option(
            help="chip: the rule's adaptation to the profile's engine; paper: its published equations "
            "in float on ideal."
        ),
    ] = "chip",
    task: Annotated[
        str | None,
        typer.Option(help="yinyang (default), digits, teacher, deep-teacher or mnist1d; a system: its own task."),
    ] = None,
    mismatch: Annotated[float, typer.Option(min=0.0, help="Relative per-neuron mismatch sigma, e.g. 0.1.")] = 0.0,
    seeds: Annotated[int, typer.Option(min=1, help="Independent chips trained at once.")] = 5,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Passes over the training set; default 40 (a system: its own).")
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="Hidden layer sizes, comma separated, e.g. 64,64; default 64.")
    ] = None,
    network: Annotated[Path | None, typer.Option(help="A NIR file to train (a layered feed-forward chain).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="An .npz with x_train, y_train, x_test, y_test instead of --task.")
    ] = None,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate per sample (float units); 0: 0.01.")] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the initial weights and draws.")] = 0,
    mirror_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="wm, ia: noise spikes per input step when mirroring; 0: 0.2.")
    ] = 0.0,
    mirror_lr: Annotated[float, typer.Option(min=0.0, help="wm, ia: B's learning rate per minibatch; 0: 0.05.")] = 0.0,
    noise_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="pal, sal: noise spikes per step and channel while training.")
    ] = 0.0,
    noise_charge: Annotated[
        float, typer.Option(min=0.0, max=4.0, help="pal, sal: thresholds of charge per noise spike.")
    ] = 0.0,
    noise_lr: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="pal, sal: B's averaging rate per minibatch.")
    ] = 0.0,
    steps: Annotated[
        int, typer.Option(min=0, help="Steps per presentation (steps x batch a power of two); 0: 32.")
    ] = 0,
    active: Annotated[
        int, typer.Option(min=0, help="Input steps of a presentation; deeper networks need fewer; 0: 24.")
    ] = 0,
    batch: Annotated[int, typer.Option(min=0, help="Samples per weight move; 0: 16.")] = 0,
    decay: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Weight decay per move on W (and KP's B), e.g. 0.0005; 0: off.")
    ] = 0.0,
    set_options: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="An option of a learning system or a paper variant, KEY=VALUE, repeatable, "
            "e.g. --set feedback=pal, or --rule pal --variant paper --set regularizer=slope.",
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the history as JSON here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write an HTML page with the curves here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train on chip with a local learning rule; log accuracy and alignment with backprop per epoch.

    Example: neurodeploy learn --rule kp --profile loihi2 --task yinyang --seeds 5 -o kp.json --plot kp.html
    (--variant paper: the published equations in float, e.g. --rule pal --variant paper --hidden 30,30,30;
    a learning system: --rule di --variant paper --set alpha=0.1)
    """
    from neurodeploy.api_learn import learn
    from neurodeploy.atomic import atomic_write, refuse_overwriting_inputs
    from neurodeploy.learning.report import final_text, learn_html, score_key
    from neurodeploy.rules.systems import SYSTEMS

    for out_path, flag in ((output, "-o"), (plot, "--plot")):
        refuse_overwriting_inputs(out_path, network, data, flag=flag)

    system = rule in SYSTEMS
    if set_options and not system and variant != "paper":
        raise NeurodeployError(
            f"--set passes the options of a learning system or of a rule's paper variant; {rule!r} runs its chip "
            "variant here",
            "--set",
            "use the rule's own flags, or --variant paper --set KEY=VALUE (e.g. --set regularizer=slope for pal)",
        )
    system_options = _parse_set(set_options or [])
    if "hidden" in system_options:  # a system's layer sizes: the same as --hidden
        if hidden is not None:
            raise NeurodeployError("the hidden sizes are given twice", "--set hidden", "use --hidden alone")
        given = system_options.pop("hidden")
        hidden = ",".join(str(h) for h in given) if isinstance(given, list) else str(given)
    try:
        sizes = None if hidden is None else [int(h) for h in hidden.split(",")]
    except ValueError:
        raise NeurodeployError(
            f"--hidden {hidden!r} is not a list of sizes", "--hidden", "e.g. --hidden 64,64"
        ) from None
    rule_arg: Any = rule
    if rule.lower().endswith(".toml"):  # a user-defined local rule
        from neurodeploy.rules.custom import load_rule

        rule_arg = load_rule(rule)
        rule = rule_arg.name
    task_or_data: Any = task if system else (task or "yinyang")
    if data is not None:
        task_or_data = _load_data(data)
    if variant not in ("chip", "paper"):
        raise NeurodeployError(f"unknown variant {variant!r}", "--variant", "use --variant chip or --variant paper")
    profile = profile or ("ideal" if variant == "paper" else "loihi2")

    for path, suffix in ((output, ".json"), (plot, ".html")):
        if path is not None and path.suffix.lower() != suffix:
            raise NeurodeployError(f"{path} should end in {suffix}", str(path), f"name it e.g. run{suffix}")
    with progress_bar() as bar:
        job = bar.add_task(f"{rule} on {profile}", total=epochs or (None if system else 40))

        done: list[dict[str, Any]] = []

        def tick(epoch: int, total: int, entry: dict[str, Any]) -> None:
            score = entry.get("test_accuracy", entry.get("test_mse", entry.get("kl", [0.0])))
            angles = [sum(a) / len(a) for a in (entry.get("weight_angle") or {}).values() if len(a)]
            angle = f", ∠(B, Wᵀ) {sum(angles) / len(angles):.1f}°" if angles else ""
            text = f"{rule} on {profile}: {sum(score) / len(score):.3f}{angle}"
            bar.update(job, completed=epoch, total=total, description=text)
            done.append(entry)
            if output is not None and epoch < total:  # an interrupted run keeps the epochs it finished
                partial = {"format": "neurodeploy.learn", "version": 2, "partial": True, "rule": rule,
                           "profile": profile, "epochs_done": epoch, "epochs": total, "history": done}  # fmt: skip

                def write(tmp: str, text: str = json.dumps(partial, indent=2) + "\n") -> None:
                    Path(tmp).write_text(text, encoding="utf-8")

                atomic_write(output, write, example=output.name)

        seed_arg = {} if system else {"seed": seed}
        result = learn(rule_arg, profile, task_or_data, hidden=sizes, network=network, mismatch=mismatch, seeds=seeds,
                       epochs=epochs, progress=tick, variant=variant, **seed_arg, **system_options,
                       **_set_options(lr=lr, mirror_rate=mirror_rate, mirror_lr=mirror_lr, noise_rate=noise_rate,
                                      noise_charge=noise_charge, noise_lr=noise_lr, decay=decay),
                       **{k: int(v) for k, v in _set_options(steps=steps, active=active, batch=batch).items()},
                       )  # fmt: skip
    report = result.to_dict()
    for path, text in ((output, json.dumps(report, indent=2) + "\n"), (plot, learn_html([report]))):
        if path is not None:

            def write(tmp: str, text: str = text) -> None:
                Path(tmp).write_text(text, encoding="utf-8")

            atomic_write(path, write, example=path.name)
    if as_json:
        _emit_json(report)
        return
    fin = report["final"]
    key = score_key(fin)
    last = fin.get("epoch", epochs)
    console.print(
        f"[bold]{rule}[/] ({report.get('variant', variant)}) on {profile}, task {report['config'].get('task', task)}, "
        f"{seeds} seeds, mismatch {mismatch:g}: {final_text(fin)} at the last epoch ({last}; {result.wall_s:.0f} s)"
    )
    best = fin.get("best_epoch")
    if best and key is not None:  # always shown, so that a reader never takes one epoch for the other
        console.print(
            f"  best epoch by validation: {best['epoch']}, {key} {best[key]['mean']:.4f} ± {best[key]['std']:.4f} "
            f"(the line above is the last epoch, {last})"
        )
    labels = (("weight_angle", "∠(B, Wᵀ)"), ("weight_angle_neg", "∠(B, −Wᵀ)"), ("signal_angle", "∠(δ, δ_BP)"),
              ("norm_ratio", "‖B‖/‖W‖"))  # fmt: skip
    for group, label in labels:
        for name, v in fin.get(group, {}).items():
            unit = "" if group == "norm_ratio" else "°"
            console.print(f"  {label} {name}: {v['mean']:.2f}{unit} ± {v['std']:.2f}{unit}")
    _provenance_table(report.get("provenance", {}))
    diffs = report.get("differences_from_paper", [])
    if diffs:
        where = "in -o's JSON" if output is not None else "with --json"
        console.print(f"{report.get('variant', 'chip')} variant: {len(diffs)} differences from the published rule, "
                      f"listed under differences_from_paper {where}")  # fmt: skip
    for path in (output, plot):
        if path is not None:
            console.print(f"wrote [bold]{shown(path)}[/]")


def _parse_set(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs of --set as typed values: int, float, true/false, a comma list of numbers, or text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise NeurodeployError(f"--set {item!r} is not KEY=VALUE", "--set", "e.g. --set feedback=pal")
        out[key.strip()] = _typed(text.strip())
    return out


def _typed(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if "," in text:
        parts = [_typed(p.strip()) for p in text.split(",")]
        if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
            return parts
    return text


def _set_options(**values: float) -> dict[str, float]:
    """The options the user set (a 0 leaves the run's default)."""
    return {name: value for name, value in values.items() if value > 0}


def _provenance_table(prov: dict[str, Any]) -> None:
    """Where each signal ran: chip or host, and the host's operations per training sample."""
    if not prov:
        return
    from rich.table import Table

    table = Table(title="where each signal ran", width=80)
    table.add_column("signal")
    table.add_column("where", overflow="fold")
    table.add_column("host ops / sample", justify="right")
    for name, entry in prov.items():
        ops = entry.get("host_ops_per_sample")
        table.add_row(name, str(entry.get("where", "")), "n/a" if ops is None else str(ops))
    console.print(table)


def _load_data(path: Path) -> tuple:
    """x_train, y_train, x_test, y_test from an .npz the user named (no pickles)."""
    import numpy as np

    from neurodeploy.limits import check_numpy_file

    if not path.is_file():
        raise NeurodeployError("file not found", str(path), "check the path")
    check_numpy_file(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise NeurodeployError(
                    f"the archive lacks {', '.join(missing)}", str(path), "save x_train, y_train, x_test, y_test"
                )
            return tuple(np.asarray(z[k]) for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError) as exc:
        raise NeurodeployError(f"not a readable .npz archive ({exc})", str(path), "write it with numpy.savez") from None
