"""GLE on MNIST-1D: an end-to-end net of 6 hidden lag layers (17 LE + 36 LI units each) learns online.

Each sample is fed as a sequence of 360 values spanning 72 time units, one value per Euler step (dt = 0.2),
as in the authors' released MNIST-1D configuration; the network learns while it runs (always-on
plasticity, no phases, no BPTT), with the target on at every step, and reads the class out as the argmax of
the output summed over the whole sequence. Prints test accuracy per seed (at the epoch with the best mean
validation accuracy, and at the last epoch) beside the paper's 91.72 ± 0.80 %, then, unless ``--no-bptt``,
the same for the same network and initial weights trained with exact BPTT (torch autograd through the same
Euler steps; a yardstick that separates GLE's approximation from our architecture guesses; ``--bptt-epochs``
may train it shorter), and the angle between GLE's update and the BPTT gradient per layer (``--no-angles``
skips it). ``--earlier-protocol`` runs the reduced protocol of our first measurement (40 values, one per
time unit, the target on during the last 10, LI τ_m 1..16 with τ_r = 0). ``--write`` stores
docs/systems/gle-mnist1d.md and docs/img/gle-mnist1d.png; ``--save`` keeps the numbers as JSON, from which
``--render`` rewrites the page and figure without training again; ``--also`` adds GLE runs stored by ``--save``
(e.g. at another ``--lr``) to the page's table and figure.

    .venv/bin/python benchmarks/gle_mnist1d.py [--seeds 3] [--epochs 18] [--feedback transpose] [--write]
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
from neurodeploy.rules.systems.gle_tasks import EARLIER_MNIST1D_PROTOCOL, mnist1d_sequences, task_network

ROOT = Path(__file__).resolve().parent.parent
PAPER = "91.72 ± 0.80 %"
STORED = ("table", "angle_table", "command", "gle_wall", "wall")


def num(x: float) -> str:
    """A number as the page writes it: 1e-5, not 1e-05."""
    return f"{x:g}".replace("e-0", "e-")


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


def unroll(net: GLENet, ws: list, bs: list, xs: Any, readout: int, steps: int = 1) -> list:
    """The GLE network's forward Euler steps in torch (so autograd gives BPTT): xs (S, N, T, 1), each value held
    for ``steps`` Euler steps; returns the outputs r_L (S, N, n_L) at the steps of the readout window."""
    import torch

    length, last = xs.shape[2], len(ws) - 1
    tau_m = [torch.as_tensor(t) for t in net.tau_m]
    tau_r = [torch.as_tensor(t) for t in net.tau_r]
    u = [xs.new_zeros(xs.shape[0], xs.shape[1], w.shape[1]) for w in ws]
    outs = []
    for t in range(length):
        for _ in range(steps):
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
    """Σ over the readout window's steps of the cross-entropy summed over the batch, summed over seeds: the
    loss whose gradient GLE's output error β (onehot − softmax) follows with β = 1."""
    import torch

    return sum(torch.nn.functional.cross_entropy(o.flatten(0, 1), labels.flatten(), reduction="sum") for o in outs)


def bptt_baseline(res: Any, seeds: int, epochs: int, lr: float, started: float) -> dict[str, Any]:
    """The same network and initial weights, trained with exact BPTT (torch autograd through the Euler steps)
    and Adam (lr per batch) on the same loss and batch size; per epoch test and validation accuracy per seed."""
    import torch

    torch.set_num_threads(1)
    task = mnist1d_sequences(int(res.config["sequence_length"]))
    net = network_of(res, seeds)
    readout, batch, steps = res.config["readout_samples"], res.config["batch_size"], res.config["steps_per_value"]
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
            loss = window_loss(unroll(net, ws, bs, x_train[idx], readout, steps), y_train[idx]) / idx.shape[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
        entry: dict[str, Any] = {"epoch": epoch}
        with torch.no_grad():
            for key, (xs, y) in splits.items():
                total = sum(unroll(net, ws, bs, xs, readout, steps)).numpy()
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

    from neurodeploy.rules.systems.gle import _angle

    task = mnist1d_sequences(int(res.config["sequence_length"]))
    xs = standardised(task.x_train[:samples], task.x_train)[None]
    labels = task.y_train[:samples]
    onehot = np.eye(res.config["sizes"][-1])[labels][None]
    readout, steps = res.config["readout_samples"], res.config["steps_per_value"]
    out: dict[str, list[float]] = {}
    for dynamics in ("prospective", "instantaneous"):
        net = network_of(res, 1)
        net.error_dynamics = dynamics
        net.reset(samples)
        total = [np.zeros_like(w) for w in net.weights]
        length = xs.shape[2]
        for t in range(length):
            for _ in range(steps):
                r_out = net.forward(xs[:, :, t])
                if t >= length - readout:
                    z = np.exp(r_out - r_out.max(-1, keepdims=True))
                    net.backward(onehot - z / z.sum(-1, keepdims=True))
                    for ell in range(net.n_layers):
                        total[ell] += net.err[ell].transpose(0, 2, 1) @ net.rates[ell]
        ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
        bs = [torch.tensor(b) for b in net.biases]
        loss = window_loss(unroll(net, ws, bs, torch.tensor(xs), readout, steps), torch.tensor(labels)[None])
        loss.backward()
        out[dynamics] = [float(_angle(g, -w.grad.numpy())[0]) for g, w in zip(total, ws, strict=True)]
    return out


def row(name: str, run: dict[str, Any]) -> str:
    seeds = " / ".join(f"{100 * a:.1f}" for a in run["best"])
    return f"| {name} | {pct(run['best'])} (epoch {run['epoch']}) | {seeds} | {pct(run['last'])} |"


# the earlier, reduced protocol (EARLIER_MNIST1D_PROTOCOL), measured by `python benchmarks/gle_mnist1d.py --write`
# when it was the default (40 epochs, 3 seeds, 574 s); `--earlier-protocol --epochs 40` runs it again
EARLIER = {
    "gle": {"best": [0.533, 0.474, 0.417], "epoch": 33},  # test per seed at the best validation epoch
    "bptt": {"best": [0.867, 0.892, 0.860], "epoch": 39},
    "angles": {"prospective": [92, 90, 91, 75, 43, 32, 0], "instantaneous": [60, 57, 54, 47, 33, 21, 0]},
    "summary": {"gle": ("47.47 ± 4.74 %", "45.83 ± 2.34 %"), "bptt": ("87.30 ± 1.37 %", "86.20 ± 2.08 %")},
}


def angle_rows(angles: dict[str, list[float]]) -> str:
    layers = len(angles["prospective"])
    return "\n".join([
        "| error neurons | " + " | ".join(f"W{k + 1}" for k in range(layers)) + " |",
        "|---|" + "---|" * layers,
        *(f"| {k} | " + " | ".join(f"{a:.0f}°" for a in v) + " |" for k, v in angles.items()),
    ])  # fmt: skip


def tables(args: argparse.Namespace, cfg: dict[str, Any], runs: dict[str, Any]) -> tuple[str, str]:
    """The result table (the paper, this run, the earlier protocol's recorded run) and the angle table."""
    which = "earlier protocol" if args.earlier_protocol else "the released configuration's protocol"
    rows = [
        "| network and training | test accuracy at the best validation epoch | per seed (test %) | last epoch |",
        "|---|---|---|---|",
        f"| paper: GLE, 6 lag layers × (17 LE + 36 LI) | **{PAPER}** | (their seeds) | |",
        row(f"ours: GLE online, {which} ({args.error_dynamics} error neurons, Adam lr {num(cfg['lr'])} per Euler "
            f"step, {args.epochs} epochs)", runs["gle"]),
    ]  # fmt: skip
    if "bptt" in runs:
        epochs = args.bptt_epochs or args.epochs
        rows.append(row(f"ours: the same network and initial weights, exact BPTT (Adam lr {args.bptt_lr:g} per "
                        f"batch, {epochs} epochs)", runs["bptt"]))  # fmt: skip
    for other in getattr(args, "also_runs", []):
        rows.append(row(f"ours: GLE online, the same protocol at Adam lr {num(other['config']['lr'])} per Euler step "
                        f"({other['args']['epochs']} epochs; `{other['command']}`)", other["runs"]["gle"]))  # fmt: skip
    if not args.earlier_protocol:
        seeds = {k: " / ".join(f"{100 * a:.1f}" for a in EARLIER[k]["best"]) for k in ("gle", "bptt")}
        (gle_best, gle_last), (bptt_best, bptt_last) = EARLIER["summary"]["gle"], EARLIER["summary"]["bptt"]
        rows += [
            f"| ours, earlier protocol (below): GLE online, 40 epochs | {gle_best} (epoch {EARLIER['gle']['epoch']}) "
            f"| {seeds['gle']} | {gle_last} |",
            f"| ours, earlier protocol: the same network, exact BPTT, 40 epochs | {bptt_best} (epoch "
            f"{EARLIER['bptt']['epoch']}) | {seeds['bptt']} | {bptt_last} |",
        ]  # fmt: skip
    return "\n".join(rows), angle_rows(runs["angles"]) if "angles" in runs else ""


def shown(argv: list[str]) -> str:
    """The command as the page shows it: the arguments that decide the numbers (``--save`` only keeps them)."""
    keep = [a for i, a in enumerate(argv) if a != "--save" and (i == 0 or argv[i - 1] != "--save")]
    return " ".join(["python benchmarks/gle_mnist1d.py", *keep])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=18)
    ap.add_argument("--feedback", default="transpose", choices=["transpose", "pal", "fa"])
    ap.add_argument("--error-dynamics", default="prospective", choices=["prospective", "instantaneous"])
    ap.add_argument("--lr", type=float, help="GLE's Adam learning rate per Euler step (default: the task's, 1e-3)")
    ap.add_argument("--bptt-lr", type=float, default=3e-3, help="Adam learning rate of the BPTT baseline, per batch")
    ap.add_argument("--bptt-epochs", type=int, help="train the BPTT baseline for this many epochs (default --epochs)")
    ap.add_argument("--no-bptt", action="store_true", help="skip the BPTT baseline (it needs torch)")
    ap.add_argument("--no-angles", action="store_true", help="skip the gradient angles (they need torch)")
    ap.add_argument("--earlier-protocol", action="store_true",
                    help="the first measurement's reduced protocol (EARLIER_MNIST1D_PROTOCOL)")  # fmt: skip
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--save", type=Path, help="also store the measured numbers as JSON here")
    ap.add_argument("--render", type=Path, help="write the page and figure from numbers stored by --save; no run")
    ap.add_argument("--also", type=Path, nargs="*", default=[],
                    help="GLE runs stored by --save (e.g. at another --lr) to show beside this one")  # fmt: skip
    args = ap.parse_args()
    args.also_runs = [json.loads(path.read_text()) for path in args.also]
    if args.render:
        stored = json.loads(args.render.read_text())
        run = SimpleNamespace(config=stored["config"], history=stored["history"])
        stored["command"] = shown(stored["command"].split()[2:])
        stored_args = argparse.Namespace(**{"earlier_protocol": False, "bptt_epochs": None, **stored["args"]})
        stored_args.also_runs = args.also_runs
        stored["table"], stored["angle_table"] = tables(stored_args, stored["config"], stored["runs"])
        write(stored_args, run, stored["runs"], *(stored[k] for k in STORED))
        return
    started = time.perf_counter()

    def progress(done: int, total: int, entry: dict[str, Any]) -> None:
        print(f"GLE epoch {done}/{total}: test {pct(entry['test_accuracy'])}, val {pct(entry['val_accuracy'])} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    protocol = dict(EARLIER_MNIST1D_PROTOCOL) if args.earlier_protocol else {}
    if args.lr is not None:
        protocol["lr"] = args.lr
    res = learn_system("gle", "mnist1d", seeds=args.seeds, epochs=args.epochs, progress=progress,
                       feedback=args.feedback, error_dynamics=args.error_dynamics, **protocol)  # fmt: skip
    gle_wall = time.perf_counter() - started
    gle = best_of(res.history)
    runs = {"gle": gle}
    if not args.no_angles:
        runs["angles"] = gradient_angles(res)
    if not args.no_bptt:
        runs["bptt"] = bptt_baseline(res, args.seeds, args.bptt_epochs or args.epochs, args.bptt_lr, started)
    wall = time.perf_counter() - started
    table, angle_table = tables(args, res.config, runs)
    command = shown(sys.argv[1:])
    print(table)
    if angle_table:
        print("\n∠(GLE update, BPTT gradient) at the initial weights, per weight matrix:\n" + angle_table)
    print(f"\n{args.seeds} seeds, {args.epochs} epochs; GLE {gle_wall:.0f} s, all {wall:.0f} s; command: {command}")
    if args.save:
        values = dict(zip(STORED, (table, angle_table, command, gle_wall, wall), strict=True))
        stored = {"config": res.config, "history": res.history, "runs": runs, "args": {**vars(args), "save": None},
                  **values}  # fmt: skip
        stored["args"].pop("also_runs")
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
    gle_label = f"GLE online, lr {num(res.config['lr'])} (test, per seed)"
    for key, color, label in (("gle", "C0", gle_label), ("bptt", "C2", "same network, BPTT")):
        if key not in runs:
            continue
        hist = res.history if key == "gle" else runs[key]["history"]
        test = 100 * np.array([h["test_accuracy"] for h in hist])
        for s in range(test.shape[1]):
            ax.plot(
                [h["epoch"] for h in hist], test[:, s], color=color, lw=1, alpha=0.8, label=label if s == 0 else None
            )
    for k, other in enumerate(getattr(args, "also_runs", [])):
        test = 100 * np.array([h["test_accuracy"] for h in other["history"]])
        for s in range(test.shape[1]):
            ax.plot([h["epoch"] for h in other["history"]], test[:, s], color=f"C{1 + 3 * k}", lw=1, alpha=0.8,
                    label=f"GLE online, lr {num(other['config']['lr'])}" if s == 0 else None)  # fmt: skip
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
    dt, tau, span, values = cfg["dt"], cfg["tau_le"], cfg["sequence_time"], cfg["sequence_length"]
    steps = values * cfg["steps_per_value"]
    half = cfg["li_units"] // 2
    tau_top = tau  # the largest τ_m (the LI units have τ/2 and τ); the earlier protocol's was 16
    lr_min = num(cfg["lr_min"])
    epochs_bptt = args.bptt_epochs or args.epochs
    gap = (f"**Our GLE number, {pct(runs['gle']['best'])} after {args.epochs} epochs, is {91.72 - gle:.0f} "
           f"percentage points below the paper's.**")  # fmt: skip
    if "bptt" in runs:
        bptt = 100 * np.mean(runs["bptt"]["best"])
        lead = f"ahead of GLE by {bptt - gle:.0f} points" if bptt > gle else f"{gle - bptt:.0f} points behind GLE"
        if bptt < 91.72 - 10:
            verdict = f"""Exact gradients are themselves {91.72 - bptt:.0f} points short of the paper's number after
this short training, which puts about that much of the gap on the training length (the paper's epoch count is
not in our source) and our remaining guesses, and the other {max(bptt - gle, 0):.0f} on GLE's online
approximation in this short run."""
        else:
            verdict = """Exact gradients come close to the paper's number with this network and protocol, so the
rest of the gap is GLE's approximation of the gradient and its training."""
        gap += f""" The same network, from the same initial weights, trained with exact BPTT for {epochs_bptt}
epochs reaches **{pct(runs["bptt"]["best"])}**, {lead}. {verdict}"""
    else:
        gap += """ The exact-BPTT baseline was not rerun on this protocol (it costs about as much per epoch as
GLE here); its number in the table is from the earlier protocol."""
    for other in getattr(args, "also_runs", []):
        o_lr, o_best = other["config"]["lr"], 100 * np.mean(other["runs"]["gle"]["best"])
        per_sequence = cfg["lr"] * steps
        spread = max(np.std(other["runs"]["gle"]["best"]), np.std(runs["gle"]["best"])) * 100
        if abs(o_best - gle) <= spread:
            compare = f"within the seeds' spread of the configuration's rate ({pct(runs['gle']['best'])})"
        else:
            compare = f"{abs(o_best - gle):.0f} points {'above' if o_best > gle else 'below'} the configuration's rate"
        test = 100 * np.array([h["test_accuracy"] for h in res.history])
        jump = float(np.abs(np.diff(test, axis=0)).max()) if len(test) > 1 else 0.0
        rates = res.history[-1].get("lr", [cfg["lr"]])
        floor = " (the schedule's floor, so it stays there)" if o_lr <= cfg["lr_min"] else ""
        gap += f"""

**The per-step rate.** Adam normalises each Euler step's update, so at the configuration's lr {num(cfg["lr"])} a
weight moves by up to about {num(cfg["lr"])} per step, {per_sequence:.2g} over one {steps}-step sequence, while the
initial weights of the upper lag layers are about {cfg["init_gain"] / np.sqrt(cfg["sizes"][1]):.2f} in size. By the
last epoch the schedule had lowered the rate to {num(min(rates))} to {num(max(rates))}, and a seed's test accuracy
still changed by up to {jump:.0f} points from one epoch to the next (figure). With lr {num(o_lr)} per
step{floor}, and otherwise the same run, GLE reaches **{pct(other["runs"]["gle"]["best"])}** after
{other["args"]["epochs"]} epochs (`{other["command"]}`, {other["wall"]:.0f} s), {compare}, with a smaller
spread over the seeds. That run deviates from the configuration in its rate; it is a check, not the protocol."""
    angles = ""
    if "angles" in runs:
        ang = runs["angles"]["prospective"]
        angles = f"""## GLE's update against the exact gradient (measured on this protocol)

The angle between GLE's online update, Σ_t ĕ_ℓ r_{{ℓ−1}}ᵀ over all {steps} steps, and the exact BPTT gradient
−∂L/∂W_ℓ of the same network and loss (the cross-entropy summed over the steps), at the initial weights (seed 0,
64 training sequences; W1 feeds the first lag layer, W{len(ang)} the output):

{angle_table}

With τ_m ≤ {tau:g} time units, GLE's update points within {max(ang[1:]):.0f}° of the gradient in every lag
layer above the first, and within {ang[0]:.0f}° in the first; under the earlier protocol (below) the four lowest
weight matrices were at 75° to 92°, i.e. unrelated to their gradient. The output layer's update is the
gradient ({ang[-1]:.0f}°), as GLE's theory says for LE units (`tests/test_system_gle.py` checks an LE network
against finite differences to 1e-5). The second row, error neurons without the advance (ĕ = e,
`--error-dynamics instantaneous`), is a control.
"""
    early = EARLIER["angles"]
    also_note = ""
    if getattr(args, "also_runs", []):
        also_note = """ The other-rate rows are runs of their own (the command in
their row, with `--save`), added to this page by `--render` with `--also`."""
    return f"""# GLE on MNIST-1D

Generalized Latent Equilibrium (Ellenberger et al., arXiv 2403.16933) learns sequences online: each
representation neuron is matched by an error neuron with its two time constants swapped, so errors are
advanced by as much as the forward pass delayed the signal, and plasticity runs all the time. The paper's
MNIST-1D anchor is **{PAPER}** test accuracy for an end-to-end GLE net of 6 hidden lag layers, each of 17 LE
and 36 LI units. This page reports our float reference of that network under the protocol of the authors'
released MNIST-1D configuration (below), beside our earlier, reduced protocol, with the same network trained
by exact backpropagation through time (BPTT) as a yardstick.

## Equations (float reference, `learn_system("gle")`, whose default task is MNIST-1D)

{equations}

Forward Euler at dt = {dt:g} time units ({steps} steps per sample), float64, {args.seeds} seeds side by side.
Nothing on this page runs on a chip. The chip version (`variant="chip"`, loihi2) runs this task too, with
`optimizer="sgd"` (Adam's per-synapse normalisation is no engine rule, so it is refused); it is not
measured here, and what runs on the chip is described on [the lagged-teacher
page](gle-lagged-teacher.md#what-runs-on-the-chip).

## Result

{table}

Feedback: `{args.feedback}`; error neurons: `{args.error_dynamics}`. The BPTT baseline unrolls the same forward
Euler steps in torch and takes autograd's gradient of the loss GLE's output error descends (the cross-entropy
summed over the steps with the target on); it is not part of the system, only a yardstick.

![MNIST-1D test accuracy per epoch, GLE and BPTT; gradient angles per layer](../img/gle-mnist1d.png)

{gap}

## The protocol (the authors' released MNIST-1D configuration)

- Time: each sample spans {span:g} time units, the `mnist1d` generator's template length 12 plus its largest
  padding 60 (`make_dataset`'s defaults), and is generated at {values} values (`final_seq_length` = {values}:
  the generator's own linear interpolation of its sheared sequence), one value per Euler step of dt = {dt:g}.
  The data set is otherwise the generator's default (seed 42; 4000 training and 1000 test sequences), of which
  the last 500 training sequences validate (3500 / 500 / 1000); the values are standardised with the training
  set's mean and standard deviation (the generator's own scale).
- Network: input size 1; {cfg["layers"]} lag layers of {cfg["le_units"]} LE units (τ_m = τ_r = τ = {tau:g}) and
  {cfg["li_units"]} LI units with τ_r = dt (a pure lag's τ_r = 0, clamped to dt) and τ_m = τ/2 = {tau / 2:g} for the
  first {half}, τ = {tau:g} for the other {cfg["li_units"] - half}; every time constant clamped to [dt, 100]; both
  kinds take the whole layer below as input; tanh rates. Output: 10 linear LE units (τ_m = τ_r = τ).
- Output error β (onehot − softmax(r_L)) with β = 1 (the cross-entropy's), on at every step of the sequence;
  the class is the argmax of the output summed over all {steps} steps. γ = 0 (errors do not nudge the
  representation); Wᵀ in the error path (`feedback="transpose"`); prospective error neurons (ĕ = v + τ_m v̇).
- Learning: Adam (0.9, 0.999, eps 1e-8) with lr {
        cfg["lr"]:g} (the configuration's 5e-3 × 72/360), applied at every Euler step to
  that step's ĕ rᵀ averaged over {cfg["batch_size"]} sequences learned side by side; ReduceLROnPlateau on the
  validation loss, per seed (patience {cfg["lr_patience"]}, factor {cfg["lr_factor"]:g}, min lr {lr_min},
  torch's default relative threshold 1e-4).

{angles}
## The earlier protocol, and why it fell short

Our first measurement used a reduced protocol of our own guesses, which `--earlier-protocol` (the options
`gle_tasks.EARLIER_MNIST1D_PROTOCOL`) still runs: the generator's 40 values, one per time unit and Euler step
(dt = 1); LE units with τ = 1; LI units with τ_r = 0 and τ_m log-spaced from 1 to 16 time units; the target on,
and the output read, during the last 10 values only; Adam lr 1e-4 per step, batch 32, no schedule. It reached
**{EARLIER["summary"]["gle"][0]}** after 40 epochs (table above), while the same network trained with exact
BPTT reached {EARLIER["summary"]["bptt"][0]}. Its angles between GLE's update and the gradient, measured the
same way:

{angle_rows(early)}

- **The leaky units' error neurons lost the direction.** An LI unit delays its input by a low-pass
  1/(1 + iωτ_m). The exact adjoint is the same low-pass run backwards in time; GLE's error neuron applies
  1 + iωτ_m instead: the same phase advance, but the inverse gain, √(1 + ω²τ_m²) where the adjoint has
  1/√(1 + ω²τ_m²). The two agree only for signals slow against τ_m (ωτ_m ≪ 1; a test shows the angle for one
  lag layer rising from about 1° for slow to over 10° for fast input). There, τ_m reached 16 time units while
  the values changed from one time unit to the next (ω up to π), so ωτ_m reached about {np.pi * 16:.0f}: the
  advance amplified the fast components the adjoint damps, and the mismatch compounded down the stack to about
  90° at the lowest layers, which thus learned from updates unrelated to their gradient.
- **Under the released configuration the signal is far slower against τ_m.** The generator stretches each
  padded digit template onto a grid of {span:g} points, one per time unit here, so the values change at most
  from one time unit to the next (ω up to π per time unit, as before), and the interpolation to {values}
  values adds no faster components; with τ_m ≤ {tau_top:g}, ωτ_m stays below about {np.pi * tau_top:.1f}
  (π × {tau_top:g}) against about {np.pi * 16:.0f} before. This is the regime where the prospective error is a
  fair stand-in for the adjoint, and the angles above show it.
- **The output error started late.** GLE's update at time t uses errors up to t only, so with the target on
  during the last 10 of 40 values no weight changed while the first 30 were presented. The released
  configuration's target is on at every step.

## Deviations from the paper and the released configuration

- Training length: {args.epochs} epochs for GLE{f" and {epochs_bptt} for BPTT" if "bptt" in runs else ""}, and
  {args.seeds} seeds, to fit about 40 minutes on one core of a shared two-core machine; the paper's epoch count
  is not in our source, and this is likely fewer.
- Arithmetic: float64 (the released configuration computes in float32).
- Initial weights N(0, {cfg["init_gain"]:g}²/fan_in), biases 0: ours, not in our source.
- The validation split (the last 500 training sequences) and the validation loss the schedule watches (the
  cross-entropy averaged over the steps and the sequences) are ours.
- Sequences start from rest: voltages and error neurons are reset between samples.
- {
        "The BPTT baseline uses Adam at lr " + f"{args.bptt_lr:g} per batch and no schedule (ours)."
        if "bptt" in runs
        else "The BPTT baseline was measured on the earlier protocol only."
    }

## Command

`{command}` ({wall:.0f} s on one core of a two-core machine shared with other jobs, of which GLE {gle_wall:.0f} s
and the angles and BPTT baseline the rest). The earlier protocol's numbers are from
`python benchmarks/gle_mnist1d.py --write` when it was the default (40 epochs, 3 seeds, 574 s), which
`python benchmarks/gle_mnist1d.py --earlier-protocol --epochs 40` runs again.{also_note}
"""


if __name__ == "__main__":
    main()
