"""Accuracy with its uncertainty: Wilson score intervals (nni_gensynth.stats)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_gensynth.stats import Accuracy, accuracy_interval


@pytest.mark.parametrize("correct, n, low, high", [
    # by hand, z = 1.959964: centre = (p + z²/2n)/(1 + z²/n), half = z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n)
    (8, 10, 0.4902, 0.9433),   # centre 0.99207/1.38415 = 0.71674, half 0.31362/1.38415 = 0.22658
    (50, 100, 0.4038, 0.5962),  # centre 0.5, half 0.09986/1.03841 = 0.09617
    (0, 10, 0.0, 0.2775),       # upper end z²/(n + z²) = 3.84146/13.84146
    (10, 10, 0.7225, 1.0),
    (1, 1, 0.2065, 1.0),        # lower end 1/(1 + z²)
])
def test_wilson_matches_hand_computed_values(correct, n, low, high):
    got = accuracy_interval(correct, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_ends_are_exact_at_zero_and_all_correct():
    assert accuracy_interval(0, 359)[0] == 0.0 and accuracy_interval(359, 359)[1] == 1.0


def test_confidence_widens_the_interval():
    low90, high90 = accuracy_interval(30, 40, confidence=0.90)
    low99, high99 = accuracy_interval(30, 40, confidence=0.99)
    assert low99 < low90 and high99 > high90
    # z = 1.644854: centre 0.78382/1.06764 = 0.73416, half 0.11758/1.06764 = 0.11014
    assert accuracy_interval(30, 40, confidence=0.90) == pytest.approx((0.6240, 0.8443), abs=1e-4)


@pytest.mark.parametrize("args, error", [
    ((1, 0), ValueError), ((5, 4), ValueError), ((-1, 4), ValueError), ((1.0, 4), TypeError),
    ((True, 4), TypeError), ((1, 4, 1.0), ValueError), ((1, 4, 0.0), ValueError),
])
def test_bad_arguments(args, error):
    with pytest.raises(error):
        accuracy_interval(*args)
    with pytest.raises(error):
        Accuracy(*args)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.5, 0.999))
def test_interval_contains_the_estimate_within_0_1(counts, confidence):
    correct, n = counts
    low, high = accuracy_interval(correct, n, confidence)
    assert 0.0 <= low <= correct / n <= high <= 1.0


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))), st.integers(2, 50))
def test_interval_narrows_with_n(counts, factor):
    correct, n = counts
    low, high = accuracy_interval(correct, n)
    low_more, high_more = accuracy_interval(correct * factor, n * factor)  # same estimate, more images
    assert high_more - low_more < high - low


def test_accuracy_value_as_one_thing():
    acc = Accuracy(8, 10)
    assert acc.value == 0.8 and acc.interval == accuracy_interval(8, 10)
    metrics = acc.as_metrics()
    assert set(metrics) == {"accuracy", "accuracy_low", "accuracy_high", "accuracy_n"}
    assert metrics["accuracy_n"] == 10 and metrics["accuracy_low"] == pytest.approx(0.4902, abs=1e-4)
    assert set(acc.as_metrics("test_accuracy")) == {"test_accuracy", "test_accuracy_low", "test_accuracy_high",
                                                    "test_accuracy_n"}
    assert str(acc) == "0.8000 [0.4902, 0.9433] (8/10, 95%)"
    assert Accuracy(8, 10) == acc and hash(Accuracy(8, 10)) == hash(acc)
    with pytest.raises(AttributeError):
        acc.correct = 9
