"""Training speed of a chip learning run, side by side with a float PyTorch run of the same rule.

A 784-500-10 network, 32 steps per sample (24 with input), rate-coded input at 10 % spike density,
Kolen-Pollack on ``loihi2``, minibatch 16. Prints milliseconds per training sample for

- the emulator's learning run (compiled network + engine, ``emulator.learning``), one chip and
  several chips at once (per chip);
- a float PyTorch implementation of the same rule and network (same spiking forward pass and
  minibatch, float updates) on the same CPU.

Run: ``python benchmarks/learning_speed.py`` (``--samples`` per measurement, ``--instances`` for the
parallel run). The first minibatch of each is a warm-up (kernel loading) and is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

SIZES = (784, 500, 10)
STEPS, ACTIVE, BATCH = 32, 24, 16
DENSITY = 0.10


def data(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random features whose rate code fires DENSITY of the input neuron-steps, and random labels."""
    rng = np.random.default_rng(seed)
    mean = DENSITY * STEPS / ACTIVE
    return rng.uniform(0, 2 * mean, (samples, SIZES[0])), rng.integers(0, SIZES[-1], samples)


def emulator_ms(samples: int, instances: int) -> tuple[float, float]:
    from neurodeploy.compiler import learning as lp
    from neurodeploy.compiler.normalize import normalize
    from neurodeploy.datasets import encode_rate
    from neurodeploy.emulator.learning import LearningRun
    from neurodeploy.hw_profiles import get
    from neurodeploy.studies.chip_learning import builtin_graph

    x, y = data(samples + BATCH)
    ir = normalize(builtin_graph(list(SIZES)), dt=1e-3, reset="zero")
    opt = lp.LearnOptions(instances=instances, init_gain=0.5, decay=5e-4, batch=BATCH, steps=STEPS, active=ACTIVE)
    run = LearningRun(lp.build(ir, "kp", get("loihi2"), opt), seed=0)
    density = 0.0

    def minibatch(i: int) -> float:
        spikes = encode_rate(x[i : i + BATCH], STEPS, ACTIVE, bias_spike=False)
        run.learn(run.present(spikes, np.eye(SIZES[-1])[y[i : i + BATCH]] * ACTIVE))
        return float(spikes.mean())

    minibatch(samples)  # warm-up
    t0 = time.perf_counter()
    for i in range(0, samples, BATCH):
        density = minibatch(i)
    return 1000 * (time.perf_counter() - t0) / samples, density


def torch_ms(samples: int) -> float:
    """KP in float PyTorch: the same spiking forward (synaptic current τ 8 steps, IF, zero reset),
    rate-minus-target output error, δ through B gated by the hidden neuron's spikes, minibatch SGD."""
    import torch

    torch.manual_seed(0)
    x, y = data(samples + BATCH)
    n_in, n_h, n_out = SIZES
    w1 = torch.randn(n_h, n_in) * 0.5 / n_in**0.5
    w2 = torch.randn(n_out, n_h) * 0.5 / n_h**0.5
    b = torch.zeros(n_h, n_out)
    lr, decay = 0.01, 5e-4
    eye = torch.eye(n_out)

    def minibatch(i: int) -> None:
        nonlocal w1, w2, b
        xb = torch.as_tensor(x[i : i + BATCH], dtype=torch.float32)
        spikes = (torch.rand(STEPS, *xb.shape) < xb * STEPS / ACTIVE).float()
        spikes[ACTIVE:] = 0
        u = torch.zeros(BATCH, n_h)
        v = torch.zeros(BATCH, n_h)
        count = torch.zeros(BATCH, n_h)
        out = torch.zeros(BATCH, n_out)
        for t in range(STEPS):
            u = 0.875 * u + spikes[t] @ w1.T
            v = v + u
            s = (v > 1).float()
            v = v * (1 - s)
            count += s
            out += s @ w2.T
        target = eye[torch.as_tensor(y[i : i + BATCH])]
        delta_out = out / ACTIVE - target
        delta_h = (delta_out @ b.T) * (count > 0)
        dw2 = -lr * delta_out.T @ (count / ACTIVE)
        w2 = w2 + dw2 - decay * w2
        b = b + dw2.T - decay * b
        w1 = w1 - lr * delta_h.T @ spikes[:ACTIVE].sum(0) / ACTIVE

    minibatch(samples)
    t0 = time.perf_counter()
    for i in range(0, samples, BATCH):
        minibatch(i)
    return 1000 * (time.perf_counter() - t0) / samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--instances", type=int, default=4)
    args = ap.parse_args()
    print(f"learning speed, {'-'.join(map(str, SIZES))}, {STEPS} steps per sample, KP on loihi2, minibatch {BATCH}")
    print(f"CPU: {os.cpu_count()} cores visible, python {platform.python_version()}, numpy {np.__version__}")
    one, density = emulator_ms(args.samples, 1)
    print(f"input spike density {density:.3f}")
    many, _ = emulator_ms(args.samples, args.instances)
    ref = torch_ms(args.samples)
    rows = [
        ("emulator, 1 chip", one, ""),
        (
            f"emulator, {args.instances} chips (per chip)",
            many / args.instances,
            f"{one / (many / args.instances):.2f}x",
        ),
        ("PyTorch float, same rule", ref, f"emulator / torch {one / ref:.2f}"),
    ]
    print(f"{'implementation':<34} {'ms per sample':>14}   ratio")
    for name, ms, ratio in rows:
        print(f"{name:<34} {ms:>14.3f}   {ratio}")


if __name__ == "__main__":
    main()
