"""Alignment metrics: the angle between two matrices (or signals) and their norm ratio.

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
