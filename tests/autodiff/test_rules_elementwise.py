"""Gradient case table: elementwise ops and activations."""
from __future__ import annotations

import pytest

from tests.autodiff.harness import Case, away_from_zero, run_case

CASES = [
    Case("Add", [("N", 3), (3,)], torch_fn=lambda a, b: a + b),
    Case("Add", [(2, 1, 4), (3, 1)], torch_fn=lambda a, b: a + b, name="Add_broadcast_both"),
    Case("Sub", [(4, 3), (1, 3)], torch_fn=lambda a, b: a - b),
    Case("Mul", [("N", 3, 2), (3, 1)], torch_fn=lambda a, b: a * b),
    Case("Relu", [("N", 5)], gen=away_from_zero, torch_fn=lambda x: x.relu()),
    Case("Identity", [(3, 2)], torch_fn=lambda x: x * 1),
    Case("Sum", [(3, 2), (2,), (1, 2)], torch_fn=lambda a, b, c: a + b + c),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient(case):
    run_case(case)
