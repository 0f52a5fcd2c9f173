"""Alignment metrics, and the correlation sums PAL and SAL accumulate during a presentation.

Angles follow the usual definition (BioTorch, Akrout et al.): ∠(A, B) = arccos(⟨vec A, vec B⟩ /
(‖A‖ ‖B‖)) in degrees with the cosine clipped to [−1, 1]; 90° is uninformative, below 90° is a descent
direction. Everything is per instance (axis 0), over all other axes.
"""

from __future__ import annotations

import numpy as np


def angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between a and b per instance; 90 where either is all zero."""
    a2 = np.asarray(a, dtype=float).reshape(a.shape[0], -1)
    b2 = np.asarray(b, dtype=float).reshape(b.shape[0], -1)
    dot = (a2 * b2).sum(1)
    norm = np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1)
    cos = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def norm_ratio(b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """‖B‖_F / ‖W‖_F per instance."""
    nb = np.linalg.norm(np.asarray(b, dtype=float).reshape(b.shape[0], -1), axis=1)
    nw = np.linalg.norm(np.asarray(w, dtype=float).reshape(w.shape[0], -1), axis=1)
    return np.divide(nb, nw, out=np.full_like(nb, np.inf), where=nw > 0)


def _response(hidden: np.ndarray, w_next: np.ndarray) -> np.ndarray:
    """The next layer's synaptic input each step: hidden spikes (T, inst, b, n) through W (inst, m, n+1)."""
    return hidden.astype(float) @ np.swapaxes(w_next[..., :-1], -1, -2)


def noise_response_corr(noise: np.ndarray, hidden: np.ndarray, w_next: np.ndarray, tau_hp: float = 8.0) -> np.ndarray:
    """PAL: Σ_t ξ_i(t)·r^HP_j(t), the noise signal of hidden neuron i against the high-passed input it
    evokes in neuron j of the next layer at the same step. (inst, b, n, m).

    r^HP(t) = (1 − 1/τ_HP)(r(t) − r̄(t − 1)) with r̄ the running low-pass, so only r(t) can carry
    this step's noise. For white Gaussian ξ added to the membrane of an escape-noise neuron (firing
    probability p = sigmoid((v − θ)/w)), Stein's lemma gives E[ξ(t)·s(t)] = σ²·E[p(1 − p)]/w exactly,
    and the other neurons' spikes are independent of ξ_i: E = (1 − 1/τ_HP)(σ²/w)·W_ji·E[Σ_t p_i(1 − p_i)].
    ``noise`` may be the noise already weighted by a gate that does not depend on this step's draw
    (``sensitivity_gate``); the identity then holds with the gate inside the sum."""
    resp = _response(hidden[: len(noise)], w_next)
    low = np.zeros_like(resp[0])
    hp = np.empty_like(resp)
    for t in range(len(resp)):
        low += (resp[t] - low) / tau_hp
        hp[t] = resp[t] - low
    return np.einsum("tsbi,tsbj->sbij", noise, hp)


def sensitivity_gate(margin: np.ndarray, noise_std: float, width: float) -> np.ndarray:
    """PAL's per-step gate q = 4·p̃(1 − p̃), p̃ = sigmoid(m / √(σ² + w²)), from the neuron's margin
    m = v − θ before this step's noise: about the firing variance it can expect given its noise-free
    membrane, 1 at threshold and 0 far from it.

    Steps far from threshold carry no signal (p(1 − p) ≈ 0) but the full noise of the product with
    r^HP; weighting by q drops them (a third of the estimation noise on a trained 4-64-3 network). q
    is independent of this step's ξ, so the estimator stays unbiased."""
    scale = float(np.hypot(noise_std, width))
    p = 0.5 + 0.5 * np.tanh(np.asarray(margin, dtype=float) / (2.0 * scale))  # the logistic, without overflow
    return 4.0 * p * (1.0 - p)


def stdp_corr(hidden: np.ndarray, w_next: np.ndarray, prob: np.ndarray | None = None, tau: float = 2.0) -> np.ndarray:
    """SAL: antisymmetric STDP between hidden spikes (post of B) and the events they evoke upstream (pre of
    B): + hidden trace at each upstream event, − upstream trace at each hidden spike. (inst, b, n, m).

    With escape-noise neurons the hidden factor is the spike's surprise s − p (p: the neuron's own firing
    probability, known to it). The surprise is private to each neuron, so its correlation with the
    upstream events is W_ji·Var(s_i) with no contribution from the other neurons' shared drive; raw spikes
    would mix in every correlated neighbour (all hidden neurons see the same few inputs)."""
    s = hidden.astype(float)
    if prob is not None:
        s = s[: len(prob)] - prob
    resp = _response(hidden[: len(s)], w_next)
    # the event a neuron of the next layer receives at t + 1 comes from the spikes of t
    events = np.concatenate([np.zeros_like(resp[:1]), resp[:-1]])
    k = np.exp(-1.0 / tau)
    y_tr = np.zeros_like(s[0])
    x_tr = np.zeros_like(events[0])
    corr = np.zeros(s.shape[1:] + (events.shape[-1],))
    for t in range(len(s)):
        corr += y_tr[..., :, None] * events[t][..., None, :]  # upstream event after hidden spikes: +
        corr -= s[t][..., :, None] * x_tr[..., None, :]  # hidden spike after upstream events: −
        y_tr = k * y_tr + s[t]
        x_tr = k * x_tr + events[t]
    return corr
