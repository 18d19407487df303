"""Parameter counts: the paper's formula reproduces its table."""

from __future__ import annotations

import pytest

from pianossm.config import preset
from pianossm.params import layer_counts, model_count, paper_count


@pytest.mark.parametrize("name,paper_k", [("XL", 268.4), ("L", 142.4), ("S", 79.4)])
def test_paper_formula_matches_paper(name: str, paper_k: float) -> None:
    assert round(paper_count(preset(name)) / 1000, 1) == paper_k


def test_paper_formula_by_hand_for_s() -> None:
    # H=64: layer totals by hand, skip in every layer, plus one 20->1 head.
    h = 64
    by_hand = 0
    for d_in, d_out in [(88, 88), (88, 60), (60, 40), (40, 20)]:
        by_hand += 2 * h + 2 * h * d_in + 2 * h + 2 * d_out * h + d_out + d_out * d_in
    assert paper_count(preset("S")) == by_hand + 21 == 79429


def test_model_differs_by_first_skip_and_heads() -> None:
    cfg = preset("XL", heads=tuple("0123456789"))
    assert paper_count(cfg) - model_count(cfg) == 88 * 88 - 9 * 21
    assert layer_counts(cfg)[0]["skip"] == 0
