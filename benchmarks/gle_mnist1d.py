"""GLE on MNIST-1D: an end-to-end net of 6 hidden lag layers (17 LE + 36 LI units each) learns online.

Each sample is fed as a sequence, one value per time unit; the network learns while it runs (always-on
plasticity, no phases, no BPTT) and reads the class out over the last values. Prints test accuracy per
seed (at the epoch with the best mean validation accuracy, and at the last epoch) beside the paper's
91.72 ± 0.80 %, then the same for the same network and initial weights trained with exact BPTT (torch
autograd through the same Euler steps; a yardstick that separates GLE's approximation from our architecture
guesses), and the angle between GLE's update and the BPTT gradient per layer. ``--write`` stores
docs/systems/gle-mnist1d.md and docs/img/gle-mnist1d.png; ``--save`` keeps the numbers as JSON, from which
``--render`` rewrites the page and figure without training again.

    .venv/bin/python benchmarks/gle_mnist1d.py [--seeds 3] [--epochs 40] [--feedback transpose] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from neurodeploy.rules.systems import learn_system
from neurodeploy.rules.systems.gle import EQUATIONS, GLENet, Options
from neurodeploy.rules.systems.gle_tasks import task_network

ROOT = Path(__file__).resolve().parent.parent
PAPER = "91.72 ± 0.80 %"
STORED = ("table", "angle_table", "command", "gle_wall", "wall")


def pct(values: Any) -> str:
    v = 100 * np.asarray(values, float)
    return f"{v.mean():.2f} ± {v.std():.2f} %"


# ---------------------------------------------------------------- the same network, trained with exact BPTT


def network_of(res: Any, seeds: int) -> GLENet:
    """The untrained network of a ``learn_system("gle", "mnist1d")`` run (same sizes, constants, seeds)."""
    names = Options.__dataclass_fields__
    opts = Options(**{k: v for k, v in res.config.items() if k in names})
    return task_network(opts, 1, res.config["sizes"][-1], seeds)


def standardised(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The sequences as the GLE network sees them: (N, T, 1), standardised with the training set's statistics."""
    return ((x.astype(np.float64) - train.mean()) / train.std())[:, :, None]


def unroll(net: GLENet, ws: list, bs: list, xs: Any, readout: int) -> list:
    """The GLE network's forward Euler steps in torch (so autograd gives BPTT): xs (S, N, T, 1); returns the
    outputs r_L (S, N, n_L) at the steps of the readout window. One Euler step per sequence value (dt = 1)."""
    import torch

    length, last = xs.shape[2], len(ws) - 1
    tau_m = [torch.as_tensor(t) for t in net.tau_m]
    tau_r = [torch.as_tensor(t) for t in net.tau_r]
    u = [xs.new_zeros(xs.shape[0], xs.shape[1], w.shape[1]) for w in ws]
    outs = []
    for t in range(length):
        r = xs[:, :, t]
        for ell, (w, b) in enumerate(zip(ws, bs, strict=True)):
            u_dot = (torch.baddbmm(b[:, None, :], r, w.transpose(1, 2)) - u[ell]) / tau_m[ell]
            u_breve = u[ell] + tau_r[ell] * u_dot
            u[ell] = u[ell] + net.dt * u_dot
            r = u_breve if ell == last else torch.tanh(u_breve)
        if t >= length - readout:
            outs.append(r)
    return outs


def window_loss(outs: list, labels: Any) -> Any:
    """Σ over the readout window of the cross-entropy summed over the batch, summed over seeds: the loss
    whose gradient GLE's output error β (onehot − softmax) follows with β = 1."""
    import torch

    return sum(torch.nn.functional.cross_entropy(o.flatten(0, 1), labels.flatten(), reduction="sum") for o in outs)


def bptt_baseline(res: Any, seeds: int, epochs: int, lr: float, started: float) -> dict[str, Any]:
    """The same network and initial weights, trained with exact BPTT (torch autograd through the Euler steps)
    and Adam (lr per batch) on the same loss and batch size; per epoch test and validation accuracy per seed."""
    import torch

    from neurodeploy.learning.tasks import get_task

    torch.set_num_threads(1)
    task = get_task("mnist1d")
    net = network_of(res, seeds)
    if net.dt != 1.0:
        raise SystemExit("the BPTT baseline unrolls one Euler step per sequence value: run with dt = 1")
    readout, batch = res.config["readout_samples"], res.config["batch_size"]
    ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    opt = torch.optim.Adam(ws + bs, lr=lr)
    x_train = torch.tensor(standardised(task.x_train, task.x_train))
    y_train = torch.tensor(task.y_train)
    splits = {k: (torch.tensor(standardised(x, task.x_train))[None].expand(seeds, -1, -1, -1), y)
              for k, x, y in (("test", task.x_test, task.y_test), ("val", task.x_val, task.y_val))}  # fmt: skip
    rngs = [np.random.default_rng([seed, 2]) for seed in range(seeds)]
    history = []
    for epoch in range(1, epochs + 1):
        order = torch.tensor(np.stack([r.permutation(len(y_train)) for r in rngs]))
        for start in range(0, order.shape[1], batch):
            idx = order[:, start : start + batch]
            loss = window_loss(unroll(net, ws, bs, x_train[idx], readout), y_train[idx]) / idx.shape[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
        entry: dict[str, Any] = {"epoch": epoch}
        with torch.no_grad():
            for key, (xs, y) in splits.items():
                total = sum(unroll(net, ws, bs, xs, readout)).numpy()
                entry[f"{key}_accuracy"] = (total.argmax(-1) == y[None]).mean(1).tolist()
        history.append(entry)
        print(f"BPTT epoch {epoch}/{epochs}: test {pct(entry['test_accuracy'])}, val {pct(entry['val_accuracy'])} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    return best_of(history)


def best_of(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Test accuracy per seed at the epoch of the best mean validation accuracy, and at the last epoch."""
    best = max(history, key=lambda h: np.mean(h["val_accuracy"]))
    return {"history": history, "epoch": best["epoch"], "best": best["test_accuracy"],
            "last": history[-1]["test_accuracy"]}  # fmt: skip


def gradient_angles(res: Any, samples: int = 64) -> dict[str, list[float]]:
    """∠(Σ_t ĕ rᵀ, −∂L/∂W) per layer at the initial weights of seed 0, on the first ``samples`` training
    sequences, for the prospective (GLE) and the instantaneous (ĕ = e) error neurons: how far GLE's online
    update is from the exact BPTT gradient of the same network and loss."""
    import torch

    from neurodeploy.learning.tasks import get_task
    from neurodeploy.rules.systems.gle import _angle

    task = get_task("mnist1d")
    xs = standardised(task.x_train[:samples], task.x_train)[None]
    labels = task.y_train[:samples]
    onehot = np.eye(res.config["sizes"][-1])[labels][None]
    readout = res.config["readout_samples"]
    out: dict[str, list[float]] = {}
    for dynamics in ("prospective", "instantaneous"):
        net = network_of(res, 1)
        net.error_dynamics = dynamics
        net.reset(samples)
        total = [np.zeros_like(w) for w in net.weights]
        length = xs.shape[2]
        for t in range(length):
            r_out = net.forward(xs[:, :, t])
            if t >= length - readout:
                z = np.exp(r_out - r_out.max(-1, keepdims=True))
                net.backward(onehot - z / z.sum(-1, keepdims=True))
                for ell in range(net.n_layers):
                    total[ell] += net.err[ell].transpose(0, 2, 1) @ net.rates[ell]
        ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
        bs = [torch.tensor(b) for b in net.biases]
        window_loss(unroll(net, ws, bs, torch.tensor(xs), readout), torch.tensor(labels)[None]).backward()
        out[dynamics] = [float(_angle(g, -w.grad.numpy())[0]) for g, w in zip(total, ws, strict=True)]
    return out


def shown(argv: list[str]) -> str:
    """The command as the page shows it: the arguments that decide the numbers (``--save`` only keeps them)."""
    keep = [a for i, a in enumerate(argv) if a != "--save" and (i == 0 or argv[i - 1] != "--save")]
    return " ".join(["python benchmarks/gle_mnist1d.py", *keep])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--feedback", default="transpose", choices=["transpose", "pal", "fa"])
    ap.add_argument("--error-dynamics", default="prospective", choices=["prospective", "instantaneous"])
    ap.add_argument("--bptt-lr", type=float, default=3e-3, help="Adam learning rate of the BPTT baseline, per batch")
    ap.add_argument("--no-bptt", action="store_true", help="skip the BPTT baseline (it needs torch)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--save", type=Path, help="also store the measured numbers as JSON here")
    ap.add_argument("--render", type=Path, help="write the page and figure from numbers stored by --save; no run")
    args = ap.parse_args()
    if args.render:
        stored = json.loads(args.render.read_text())
        run = SimpleNamespace(config=stored["config"], history=stored["history"])
        stored["command"] = shown(stored["command"].split()[2:])
        write(argparse.Namespace(**stored["args"]), run, stored["runs"], *(stored[k] for k in STORED))
        return
    started = time.perf_counter()

    def progress(done: int, total: int, entry: dict[str, Any]) -> None:
        print(f"GLE epoch {done}/{total}: test {pct(entry['test_accuracy'])}, val {pct(entry['val_accuracy'])} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    res = learn_system("gle", "mnist1d", seeds=args.seeds, epochs=args.epochs, progress=progress,
                       feedback=args.feedback, error_dynamics=args.error_dynamics)  # fmt: skip
    gle_wall = time.perf_counter() - started
    gle = best_of(res.history)
    runs = {"gle": gle}
    if not args.no_bptt:
        runs["bptt"] = bptt_baseline(res, args.seeds, args.epochs, args.bptt_lr, started)
        runs["angles"] = gradient_angles(res)
    wall = time.perf_counter() - started
    cfg = res.config

    def row(name: str, run: dict[str, Any]) -> str:
        seeds = " / ".join(f"{100 * a:.1f}" for a in run["best"])
        return f"| {name} | {pct(run['best'])} (epoch {run['epoch']}) | {seeds} | {pct(run['last'])} |"

    rows = [
        "| network and training | test accuracy at the best validation epoch | per seed (test %) | last epoch |",
        "|---|---|---|---|",
        f"| paper: GLE, 6 lag layers × (17 LE + 36 LI) | **{PAPER}** | (their seeds) | |",
        row(f"ours: GLE online ({args.error_dynamics} error neurons, Adam lr {cfg['lr']:g} per Euler step)", gle),
    ]
    if "bptt" in runs:
        rows.append(
            row(
                f"ours: the same network and initial weights, exact BPTT (Adam lr {args.bptt_lr:g} per batch)",
                runs["bptt"],
            )
        )
    table = "\n".join(rows)
    angle_table = ""
    if "angles" in runs:
        layers = len(runs["angles"]["prospective"])
        angle_table = "\n".join([
            "| error neurons | " + " | ".join(f"W{k + 1}" for k in range(layers)) + " |",
            "|---|" + "---|" * layers,
            *(f"| {k} | " + " | ".join(f"{a:.0f}°" for a in v) + " |" for k, v in runs["angles"].items()),
        ])  # fmt: skip
    command = shown(sys.argv[1:])
    print(table)
    if angle_table:
        print("\n∠(GLE update, BPTT gradient) at the initial weights, per weight matrix:\n" + angle_table)
    print(f"\n{args.seeds} seeds, {args.epochs} epochs; GLE {gle_wall:.0f} s, all {wall:.0f} s; command: {command}")
    if args.save:
        values = dict(zip(STORED, (table, angle_table, command, gle_wall, wall), strict=True))
        stored = {"config": res.config, "history": res.history, "runs": runs, "args": {**vars(args), "save": None},
                  **values}  # fmt: skip
        args.save.write_text(json.dumps(stored, default=str))
    if args.write:
        write(args, res, runs, table, angle_table, command, gle_wall, wall)


def write(args: argparse.Namespace, res: Any, runs: dict[str, Any], table: str, angle_table: str, command: str,
          gle_wall: float, wall: float) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    for key, color, label in (("gle", "C0", "GLE online (test, per seed)"), ("bptt", "C2", "same network, BPTT")):
        if key not in runs:
            continue
        hist = res.history if key == "gle" else runs[key]["history"]
        test = 100 * np.array([h["test_accuracy"] for h in hist])
        for s in range(test.shape[1]):
            ax.plot(
                [h["epoch"] for h in hist], test[:, s], color=color, lw=1, alpha=0.8, label=label if s == 0 else None
            )
    ax.axhspan(91.72 - 0.80, 91.72 + 0.80, color="0.6", alpha=0.4, label=f"paper (GLE): {PAPER}")
    ax.axhline(10, color="0.3", lw=0.8, ls=":", label="chance")
    ax.set(xlabel="epoch", ylabel="test accuracy %", ylim=(0, 100))
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    if "angles" in runs:
        for i, (key, vals) in enumerate(runs["angles"].items()):
            ax.bar(np.arange(len(vals)) + 1 + (i - 0.5) * 0.38, vals, width=0.38, label=f"{key} ĕ", color=f"C{3 + i}")
        ax.axhline(90, color="0.3", lw=0.8, ls=":")
        ax.set(xlabel="weight matrix (1 = input → first lag layer)", ylabel="∠(GLE update, BPTT gradient) °",
               ylim=(0, 120))  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "gle-mnist1d.png", dpi=120, metadata={"Software": None})
    (ROOT / "docs" / "systems").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "systems" / "gle-mnist1d.md").write_text(page(args, res, runs, table, angle_table, command,
                                                                    gle_wall, wall))  # fmt: skip


def page(args: argparse.Namespace, res: Any, runs: dict[str, Any], table: str, angle_table: str, command: str,
         gle_wall: float, wall: float) -> str:  # fmt: skip
    cfg = res.config
    equations = "\n".join(f"- {e}" for e in EQUATIONS)
    gle = 100 * np.mean(runs["gle"]["best"])
    gap = f"**Our GLE number is {91.72 - gle:.0f} percentage points below the paper's.**"
    if "bptt" in runs:
        bptt = 100 * np.mean(runs["bptt"]["best"])
        ang = runs["angles"]
        gap += f""" The same network, from the same initial weights, trained with exact BPTT for the same
{args.epochs} epochs reaches **{pct(runs["bptt"]["best"])}**. So our guesses at the unstated parts of the
architecture, with the shorter training, account for about {max(91.72 - bptt, 0):.0f} of the {91.72 - gle:.0f}
points, and GLE's approximation of the gradient, in this network, for the other {bptt - gle:.0f}.

## Why GLE falls short here (measured)

The angle between GLE's online update, Σ_t ĕ_ℓ r_{{ℓ−1}}ᵀ over the readout window, and the exact BPTT gradient
−∂L/∂W_ℓ of the same network and loss, at the initial weights (seed 0, 64 training sequences; W1 feeds the first
lag layer, W{len(ang["prospective"])} the output):

{angle_table}

- **Where the theory says GLE is exact, it is.** With only LE units (τ_r = τ_m), GLE's update equals the
  gradient (`tests/test_system_gle.py` checks it against finite differences to 1e-5), and so does the output
  layer's update here ({ang["prospective"][-1]:.0f}°). The error path (Wᵀ, φ′, the output error) is not the cause.
- **The leaky units' error neurons are where the direction is lost.** An LI unit (τ_r = 0) delays its input
  by a low-pass 1/(1 + iωτ_m). The exact adjoint is the same low-pass run backwards in time; GLE's error neuron
  applies 1 + iωτ_m instead: the same phase advance, but the inverse gain, √(1 + ω²τ_m²) where the adjoint has
  1/√(1 + ω²τ_m²). The two agree only for signals slow against τ_m (ωτ_m ≪ 1; a test shows the angle for one
  lag layer rising from about 1° for slow to over 10° for fast input). Here τ_m reaches {cfg["tau_li_max"]:g}
  sequence steps while MNIST-1D's values, and the hidden rates and errors they drive, change from one step to
  the next, so ωτ_m ≫ 1 for much of the signal: the advance amplifies the fast components the adjoint damps,
  and the mismatch compounds down the stack, from {ang["prospective"][-2]:.0f}° at the top lag layer to about
  90° (no alignment) at the bottom ones. The lower lag layers thus learn from updates unrelated to their
  gradient, and what the net learns it learns mostly through its upper layers. Error neurons without the
  advance (ĕ = e, `--error-dynamics instantaneous`, second row) avoid the amplification and are closer in
  angle, but they drop the phase correction too and are not the gradient either.
- **GLE cannot assign credit to times before the output error starts.** Its update at time t uses errors up
  to t only (the advance extrapolates; it does not see the future), so with the target on during the last
  {cfg["readout_samples"]} of the 40 values, no weight changes while the first {40 - cfg["readout_samples"]} are
  presented, while BPTT's gradient reaches back through the leaky units' memory.
- Not the cause, in short single-seed checks outside this script: the output error over the whole sequence or
  with a smooth onset, Euler substeps (dt = 1/4) with the input interpolated, shorter LI time constants (1 to 4
  or 8), and error neurons with τ_r < dt taken to their relaxed limit (ĕ = e + τ_m ė) instead of τ_r = dt left
  the angles of the lower layers near 90° or the accuracy no higher.
"""
    else:
        gap += " (Rerun without `--no-bptt` for the BPTT baseline and the gradient angles.)"
    return f"""# GLE on MNIST-1D

Generalized Latent Equilibrium (Ellenberger et al., arXiv 2403.16933) learns sequences online: each
representation neuron is matched by an error neuron with its two time constants swapped, so errors are
advanced by as much as the forward pass delayed the signal, and plasticity runs all the time. The paper's
MNIST-1D anchor is **{PAPER}** test accuracy for an end-to-end GLE net of 6 hidden lag layers, each of 17 LE
and 36 LI units. This page reports our float reference of that network, and the same network trained with
exact backpropagation through time (BPTT) as a baseline.

## Equations (float reference, `learn_system("gle")`, whose default task is MNIST-1D)

{equations}

Forward Euler at dt = {cfg["dt"]:g} sequence steps, float64, {args.seeds} seeds side by side. Nothing on this
page runs on a chip. The chip version (`variant="chip"`, loihi2) runs this task too, with
`optimizer="sgd"` (Adam's per-synapse normalisation is no engine rule, so it is refused); it is not
measured here, and what runs on the chip is described on [the lagged-teacher
page](gle-lagged-teacher.md#what-runs-on-the-chip).

## Result

{table}

Feedback: `{args.feedback}`; error neurons: `{args.error_dynamics}`. The BPTT baseline unrolls the same forward
Euler steps in torch and takes autograd's gradient of the loss GLE's output error descends (the cross-entropy
summed over the readout window); it is not part of the system, only a yardstick.

![MNIST-1D test accuracy per epoch, GLE and BPTT; gradient angles per layer](../img/gle-mnist1d.png)

{gap}

## The network (every choice not in our source is a guess, listed as a deviation)

- Input: MNIST-1D from `neurodeploy.learning.tasks.get_task("mnist1d")`: the `mnist1d` package's default
  dataset (4000 training and 1000 test sequences of 40 values), of which the last 500 training sequences
  validate (3500 / 500 / 1000). One value per time unit, standardised with the training set's mean and
  standard deviation (the task scales them into [0, 1]; standardising restores the generator's own scale).
- Hidden: {cfg["layers"]} lag layers of {cfg["le_units"]} LE units (τ_m = τ_r = {cfg["tau_le"]:g}: instantaneous)
  and {cfg["li_units"]} LI units (leaky integrators: τ_r = 0, τ_m log-spaced from {cfg["tau_li_min"]:g} to
  {cfg["tau_li_max"]:g} time units); both kinds take the whole layer below as input; tanh rates.
- Output: 10 linear LE units; output error β (onehot − softmax(r_L)) with β = 1, switched on during the last
  {cfg["readout_samples"]} values of each sequence; the class is the argmax of the output summed over that window.
- Initial weights N(0, {cfg["init_gain"]:g}²/fan_in), biases 0; Wᵀ in the error path (`feedback="transpose"`, as in
  the released code); γ = 0 (no nudging of the representation voltage).

## Deviations from the paper

- The architecture's unstated parts above (time constants, LE/LI wiring, nonlinearity, initialisation, the
  readout window, input scaling) are ours.
- Weight updates: the per-step ĕ rᵀ of {cfg["batch_size"]} sequences learned side by side is averaged and
  passed through Adam (lr {cfg["lr"]:g}) at every Euler step (`optimizer="adam"`, the task default here;
  `optimizer="sgd"` is the plain Ẇ = η ĕ rᵀ). Learning is still online: every step updates the weights.
  GLE's rate was kept after 3e-4 and 1e-3 learned faster in the first epochs but reached no higher; the
  BPTT baseline's 3e-3 was picked over 1e-3 in a short single-seed run.
- Training length: {args.epochs} epochs and {args.seeds} seeds, reduced to fit about ten minutes on one core (the
  paper's training length is not in our source).
- An error neuron whose τ_r is below dt (the LI units' τ_r = 0) relaxes within one Euler step: its τ_r is
  taken as dt.
- Sequences start from rest: voltages and error neurons are reset between samples.

## Command

`{command}` ({wall:.0f} s on one core of a two-core machine, of which GLE {gle_wall:.0f} s and the BPTT
baseline and angles the rest)
"""


if __name__ == "__main__":
    main()
