"""Mean Kinetic Temperature: the USP-style vectors of docs/sources.md, exactly and in a window."""

from __future__ import annotations

import pytest

from edge_server.rules.mkt import MktWindow, mkt_c

VECTORS = [
    ([(24, 5.0)], 5.00),
    ([(18, 5.0), (6, 14.0)], 8.29),
    ([(20, 5.0), (4, 25.0)], 12.88),
]


@pytest.mark.parametrize(("segments", "expected_c"), VECTORS)
def test_vectors(segments: list[tuple[float, float]], expected_c: float) -> None:
    assert round(mkt_c(segments), 2) == expected_c


@pytest.mark.parametrize(("segments", "expected_c"), VECTORS)
def test_sliding_window_of_minute_samples_gives_the_same(
    segments: list[tuple[float, float]], expected_c: float
) -> None:
    window = MktWindow(24 * 3600)
    t = 0.0
    # a day of something else first: the window must forget it
    for _ in range(24 * 60):
        window.add(t, 30.0)
        t += 60
    for hours, temp_c in segments:
        for _ in range(int(hours * 60)):
            window.add(t, temp_c)
            t += 60
    window.add(t, 5.0)  # closes the last held minute
    value = window.value()
    assert value is not None
    assert round(value, 2) == expected_c


def test_window_needs_data_and_skips_unknown() -> None:
    window = MktWindow(24 * 3600, min_span_s=3600)
    for i in range(30):
        window.add(i * 60.0, 5.0)
    assert window.value() is None  # 29 min of data
    for i in range(30, 200):
        window.add(i * 60.0, None if 60 <= i < 120 else 5.0)
    assert window.span_s == pytest.approx((200 - 1 - 60) * 60)
    assert window.value() == pytest.approx(5.0)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="positive total"):
        mkt_c([])
    with pytest.raises(ValueError, match="negative"):
        mkt_c([(-1, 5.0)])
