"""Yin-Yang generator reproduces the published splits; encoders put spikes where they promise."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.datasets import (
    EncoderSettings,
    encode_latency,
    encode_rate,
    yin_yang,
    yin_yang_class,
    yin_yang_splits,
)

# Label counts (class 0/1/2) of the published publication_data splits.
PUBLISHED_COUNTS = {
    "train": [1681, 1702, 1617],
    "validation": [316, 336, 348],
    "test": [350, 316, 334],
}


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return yin_yang_splits()


@pytest.mark.parametrize("name", ["train", "validation", "test"])
def test_splits_reproduce_published_label_counts(splits, name: str) -> None:
    features, labels = splits[name]
    assert features.shape == (sum(PUBLISHED_COUNTS[name]), 4)
    assert features.dtype == np.float32
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=3).tolist() == PUBLISHED_COUNTS[name]


def test_features_in_unit_square_mirrored_and_inside_disk(splits) -> None:
    for features, labels in splits.values():
        assert features.min() >= 0.0 and features.max() <= 1.0
        np.testing.assert_allclose(features[:, :2] + features[:, 2:], 1.0, atol=1e-6)
        x, y = features[:, 0].astype(np.float64), features[:, 1].astype(np.float64)
        assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5 + 1e-6)
        # Labels agree with the geometry (up to float32 rounding right at a boundary).
        agree = np.mean([yin_yang_class(a, b) == c for a, b, c in zip(x, y, labels, strict=True)])
        assert agree > 0.995


def test_first_test_sample_is_stable(splits) -> None:
    features, labels = splits["test"]
    np.testing.assert_allclose(features[0], [0.23409665, 0.40172496, 0.76590335, 0.598275], atol=1e-6)
    assert labels[:1].tolist() == [int(yin_yang_class(*features[0, :2].astype(float)))]


def test_generator_is_deterministic_and_seed_dependent() -> None:
    a_x, a_y = yin_yang(50, 3)
    b_x, b_y = yin_yang(50, 3)
    c_x, _ = yin_yang(50, 4)
    np.testing.assert_array_equal(a_x, b_x)
    np.testing.assert_array_equal(a_y, b_y)
    assert not np.array_equal(a_x, c_x)


def test_class_geometry() -> None:
    assert yin_yang_class(0.75, 0.5) == 2  # centre of the right dot
    assert yin_yang_class(0.25, 0.5) == 2  # centre of the left dot
    assert yin_yang_class(0.5, 0.9) == 1  # top half, away from the right lobe
    assert yin_yang_class(0.5, 0.1) == 0  # bottom half


def test_latency_encoding_timing() -> None:
    feats = np.array([[0.0, 1.0, 0.5, 0.26]], dtype=np.float32)
    spikes = encode_latency(feats, steps=30, t_min=2, t_max=22)
    assert spikes.shape == (30, 1, 5) and spikes.dtype == np.float32
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    assert spikes[:, 0, :4].sum(0).tolist() == [1, 1, 1, 1]  # exactly one spike per feature
    times = spikes[:, 0, :4].argmax(0).tolist()
    assert times == [2, 22, 12, int(np.rint(2 + 0.26 * 20))]
    assert spikes[:, 0, 4].nonzero()[0].tolist() == [0]  # bias spike at step 0 only


def test_latency_encoding_without_bias_and_bad_window() -> None:
    feats = np.random.RandomState(0).rand(7, 4).astype(np.float32)
    spikes = encode_latency(feats, steps=10, t_min=0, t_max=9, bias_spike=False)
    assert spikes.shape == (10, 7, 4)
    assert np.all(spikes.sum(0) == 1)
    with pytest.raises(ValueError):
        encode_latency(feats, steps=10, t_min=0, t_max=10)


def test_rate_encoding_counts_and_silent_tail() -> None:
    values = np.linspace(0.0, 1.0, 41, dtype=np.float32)
    feats = np.stack([values, 1 - values, values, 1 - values], axis=1)
    spikes = encode_rate(feats, steps=32, active=26)
    assert spikes.shape == (32, 41, 5) and spikes.dtype == np.float32
    counts = spikes.sum(0)
    assert np.all(np.abs(counts[:, 0] - values * 26) <= 0.5 + 1e-6)  # count = value * active, rounded
    assert np.all(spikes[26:] == 0)  # silent tail for the chip's latency
    assert np.all(spikes[:26, :, 4] == 1)  # bias fires at every active step
    assert np.all(counts[0, :4] == [0, 26, 0, 26])
    # Regular trains: a value of 0.5 spikes every second step.
    assert spikes[:8, 20, 0].tolist() == [1, 0, 1, 0, 1, 0, 1, 0]


def test_encoder_settings_dispatch() -> None:
    feats, _ = yin_yang(5, 0)
    rate = EncoderSettings(kind="rate", steps=20, active=16)
    lat = EncoderSettings(kind="latency", steps=20, t_min=1, t_max=15)
    np.testing.assert_array_equal(rate.encode(feats), encode_rate(feats, 20, 16))
    np.testing.assert_array_equal(lat.encode(feats), encode_latency(feats, 20, 1, 15))
    assert rate.n_inputs == 5
    with pytest.raises(ValueError):
        EncoderSettings(kind="bogus").encode(feats)  # type: ignore[arg-type]
