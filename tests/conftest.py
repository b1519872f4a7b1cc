"""Fixtures shared by several test modules."""

from dataclasses import replace

import pytest


@pytest.fixture
def heat_scaled_by(monkeypatch):
    """Make the HEOM pump's heat wrong by a factor (``heat_scaled_by(1.01)``): a broken
    computation whose first law must then fail its check."""
    from qpump.pump import HEOMBackend

    evolve = HEOMBackend.evolve

    def scale(factor: float) -> None:
        def wrong(self, state, hamiltonian, times, progress=None):
            seg = evolve(self, state, hamiltonian, times, progress)
            return replace(seg, heat=factor * seg.heat)

        monkeypatch.setattr(HEOMBackend, "evolve", wrong)

    return scale
