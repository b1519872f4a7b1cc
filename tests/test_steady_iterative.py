"""The iterative steady state (qpump.steady_iterative) against the sparse direct solve."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from qpump.errors import ComputationError, InvalidParameterError
from qpump.heom import DrudeLorentzBath, HEOMSolver, steady_state_memory_bytes
from qpump.pump import Q_A, Q_B, HeatPump
from qpump.steady_iterative import (
    IterativeSolveError,
    hierarchy_tiers,
    iterative_memory_bytes,
    iterative_memory_parts,
    solve_stationary,
    stationary_system,
)

SX = np.array([[0, 1], [1, 0]], dtype=complex)
SZ = np.diag([1.0, -1.0]).astype(complex)


def pump_solver(depth: int, kappa: float, expansion: str = "matsubara", n_exp: int = 2) -> HEOMSolver:
    """The two-qubit pump's hierarchy with kappa_a = kappa, kappa_b = 2.3 kappa (the paper's ratio)."""
    p = HeatPump(depth=depth)
    baths = [DrudeLorentzBath(Q_A, kappa, p.gamma, p.TA, n_exp=n_exp, expansion=expansion),
             DrudeLorentzBath(Q_B, 2.3 * kappa, p.gamma, p.TB, n_exp=n_exp, expansion=expansion)]
    return HEOMSolver(p.coupled_hamiltonian, baths, depth=depth)


def qubit_solver(depth: int, kappa: float, expansion: str = "pade", n_exp: int = 2) -> HEOMSolver:
    bath = DrudeLorentzBath(SX, kappa, 2.0, 1.0, n_exp=n_exp, expansion=expansion)
    return HEOMSolver(0.5 * SZ + 0.25 * SX, [bath], depth=depth)


def system(solver: HEOMSolver):
    rows, cols, vals, dim = solver._core.generator()
    return stationary_system(rows, cols, vals, dim, solver.dim)


def direct(mat, rhs) -> np.ndarray:
    # One BLAS thread, as heom.py: a multithreaded BLAS spins in SuperLU on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return spla.spsolve(mat, rhs, permc_spec="MMD_AT_PLUS_A")


def relative_residual(mat, x, rhs) -> float:
    return float(np.linalg.norm(mat @ x - rhs) / np.linalg.norm(rhs))


@pytest.fixture(scope="module")
def pump3():
    """Depth 3 of the pump at kappa 0.1 (84 ADOs, dimension 1,344) and its direct solution."""
    solver = pump_solver(3, 0.1)
    mat, rhs = system(solver)
    return solver, mat, rhs, direct(mat, rhs)


@pytest.mark.parametrize("expansion", ["matsubara", "pade"])
@pytest.mark.parametrize("kappa", [0.01, 0.1, 0.5])
def test_pump_agrees_with_direct_solve(expansion, kappa):
    solver = pump_solver(3, kappa, expansion)
    mat, rhs = system(solver)
    ref = direct(mat, rhs)
    sol = solve_stationary(mat, rhs)
    d = solver.dim
    assert sol.residual <= 1e-11
    assert sol.preconditioner == "block-ilu"
    assert 0 < sol.iterations < 40
    assert np.max(np.abs(sol.x[:d * d] - ref[:d * d])) < 1e-9
    assert np.max(np.abs(sol.x - ref)) < 1e-8
    assert sol.setup_seconds >= 0 and sol.solve_seconds >= 0 and sol.memory_bytes > 0


@pytest.mark.parametrize("depth", [6, 10])
@pytest.mark.parametrize("kappa", [0.05, 0.5])
def test_qubit_pade_agrees_with_direct_solve(depth, kappa):
    solver = qubit_solver(depth, kappa)
    mat, rhs = system(solver)
    ref = direct(mat, rhs)
    sol = solve_stationary(mat, rhs, d=2)
    assert sol.residual <= 1e-11
    assert np.max(np.abs(sol.x[:4] - ref[:4])) < 1e-9


def test_block_jacobi_agrees_with_direct_solve(pump3):
    solver, mat, rhs, ref = pump3
    sol = solve_stationary(mat, rhs, preconditioner="block-jacobi")
    assert sol.preconditioner == "block-jacobi"
    assert sol.residual <= 1e-11
    assert np.max(np.abs(sol.x[:16] - ref[:16])) < 1e-9


def test_matches_heom_steady_state(pump3):
    """The system built here is the one HEOMSolver.steady_state solves: same rho."""
    solver, mat, rhs, _ = pump3
    sol = solve_stationary(mat, rhs)
    rho = sol.x[:16].reshape(4, 4) * solver._core.ado_scales()[0]
    assert np.max(np.abs(rho - solver.steady_state().rho)) < 1e-9


def test_reported_residual_is_the_true_residual(pump3):
    _, mat, rhs, _ = pump3
    for rtol in (1e-6, 1e-11):
        sol = solve_stationary(mat, rhs, rtol=rtol)
        true = relative_residual(mat, sol.x, rhs)
        assert sol.residual <= rtol
        assert sol.residual == pytest.approx(true, rel=1e-6, abs=1e-15)


def test_single_exponent_chain_is_solved_exactly():
    """One exponent: the hierarchy is a chain, the block ILU is its exact LU (one iteration)."""
    solver = qubit_solver(8, 0.3, expansion="matsubara", n_exp=0)
    mat, rhs = system(solver)
    sol = solve_stationary(mat, rhs)
    assert sol.iterations == 1
    assert np.max(np.abs(sol.x - direct(mat, rhs))) < 1e-11


def test_tiers_read_from_the_matrix(pump3):
    solver, mat, _, _ = pump3
    np.testing.assert_array_equal(hierarchy_tiers(mat, 4), solver.labels.sum(axis=1))
    given = solve_stationary(mat, pump3[2], tiers=solver.labels.sum(axis=1))
    assert given.residual <= 1e-11


def test_non_convergence_raises_with_the_residual(pump3):
    _, mat, rhs, _ = pump3
    with pytest.raises(IterativeSolveError) as info:
        solve_stationary(mat, rhs, maxiter=1)
    err = info.value
    assert isinstance(err, ComputationError)
    assert err.iterations == 1 and err.rtol == 1e-11
    assert err.residual > 1e-11
    match = re.search(r"= ([0-9.e+-]+) after 1 GMRES iterations \(maxiter = 1\)", str(err))
    assert match is not None, str(err)
    assert float(match.group(1)) == pytest.approx(err.residual, rel=1e-2)


def test_unreachable_tolerance_stagnates_with_the_residual(pump3):
    _, mat, rhs, _ = pump3
    with pytest.raises(IterativeSolveError, match=r"stagnated: relative residual .* = \d"):
        solve_stationary(mat, rhs, rtol=1e-30, restart=5)


def test_should_stop_interrupts_between_iterations(pump3):
    _, mat, rhs, _ = pump3
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 6  # the setup polls once per tier (4 tiers), then every iteration

    with pytest.raises(KeyboardInterrupt, match="after 2 GMRES iterations"):
        solve_stationary(mat, rhs, should_stop=stop)
    assert len(calls) == 7


def test_should_stop_before_setup(pump3):
    _, mat, rhs, _ = pump3
    with pytest.raises(KeyboardInterrupt, match="before the preconditioner"):
        solve_stationary(mat, rhs, should_stop=lambda: True)


def test_starting_from_the_solution_needs_no_iteration(pump3):
    _, mat, rhs, ref = pump3
    sol = solve_stationary(mat, rhs, x0=ref)
    assert sol.iterations == 0 and sol.residual <= 1e-11


def test_invalid_arguments(pump3):
    _, mat, rhs, _ = pump3
    with pytest.raises(InvalidParameterError, match="multiple of d"):
        solve_stationary(mat, rhs, d=3)
    with pytest.raises(InvalidParameterError, match="rhs"):
        solve_stationary(mat, rhs[:-1])
    with pytest.raises(InvalidParameterError, match="rtol"):
        solve_stationary(mat, rhs, rtol=0.0)
    with pytest.raises(InvalidParameterError, match="maxiter"):
        solve_stationary(mat, rhs, maxiter=0)
    with pytest.raises(InvalidParameterError, match="preconditioner"):
        solve_stationary(mat, rhs, preconditioner="spilu")
    with pytest.raises(InvalidParameterError, match="trace condition"):
        solve_stationary(mat.T.tocsc(), rhs)


def test_memory_estimate(pump3):
    solver, mat, rhs, _ = pump3
    sol = solve_stationary(mat, rhs)
    parts = iterative_memory_parts(solver.n_ados, 4, 6, mat.nnz)
    assert set(parts) == {"generator triplets", "sparse matrix", "preconditioner", "krylov"}
    assert iterative_memory_bytes(solver.n_ados, 4, 6, mat.nnz) == sum(parts.values())
    assert parts["sparse matrix"] + parts["preconditioner"] + parts["krylov"] >= sol.memory_bytes
    # Without nnz the structural count is used; it matches the matrix within a few entries.
    assert iterative_memory_bytes(solver.n_ados, 4, 6) == pytest.approx(
        iterative_memory_bytes(solver.n_ados, 4, 6, mat.nnz), rel=1e-3)
    # Depth 8 of the pump: a small fraction of the 2.1-2.6 GB the sparse LU was measured to take;
    # heom's estimate of the steady state is this one there.
    assert iterative_memory_bytes(3003, 4, 6) < 2.1e9 / 10
    assert steady_state_memory_bytes(3003, 4, 6, 8) == iterative_memory_bytes(3003, 4, 6)
