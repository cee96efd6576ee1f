"""The words for kinds of runtime, read both ways: what ``--tpu`` accepts is what is shown."""

from __future__ import annotations

import pytest

from colabtray.colab.kinds import TPU, kind_label, tpu_model


@pytest.mark.parametrize(
    ("typed", "model"),
    [
        ("v5e", "V5E1"),
        ("V5E-1", "V5E1"),
        (" v6e ", "V6E1"),
        ("v6e-1", "V6E1"),
        ("v2-8", "V28"),
        ("V5E1", "V5E1"),  # Colab's own name passes as it is
        ("v9z", "V9Z"),  # one colabtray does not know yet: Colab has the last word
    ],
)
def test_a_tpu_is_named_as_typed_or_as_shown(typed: str, model: str) -> None:
    assert tpu_model(typed) == model


@pytest.mark.parametrize("model", ["V28", "V5E1", "V6E1"])
def test_the_label_shown_for_a_tpu_types_back_to_it(model: str) -> None:
    shown = kind_label(TPU, model).removesuffix(" TPU")
    assert tpu_model(shown) == model
