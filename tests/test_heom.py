"""Tests of qpump.heom: bath exponents, hierarchy dynamics and observables.

QuTiP's HEOMSolver (a declared test dependency) is the oracle for the dynamics; the physical
checks (pure dephasing, closed-system limit, detailed balance, first law, trace) are independent
of it.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time

import numpy as np
import pytest
import qutip as qt
import scipy.integrate
import scipy.linalg
from qutip.solver.heom import DrudeLorentzBath as QtDLBath
from qutip.solver.heom import DrudeLorentzPadeBath as QtPadeBath
from qutip.solver.heom import HEOMSolver as QtHEOMSolver
from qutip.solver.heom import UnderDampedBath as QtUnderdampedBath

from qpump.bench import qutip_heat_currents, qutip_liouvillian
from qpump.errors import HierarchyTooLargeError, IntegrationError, InvalidParameterError, InvalidStateError
from qpump.heom import ADOState, DrudeLorentzBath, ExponentialBath, HEOMSolver, Ramp, UnderdampedBath
from qpump.states import (
    H_A,
    H_B,
    IDENTITY2,
    SIGMA_X,
    SIGMA_Z,
    coupling_potential,
    optimal_correlation,
)

# The model of the paper (README, physics conventions), taken from the package's own lower layers.
SX, SZ, I2 = SIGMA_X, SIGMA_Z, IDENTITY2
H0 = H_A + H_B
QA = np.kron(SX, I2)
QB = np.kron(I2, SX)
DIMS = [[2, 2], [2, 2]]


def v_ab(omega: float = 0.1, phi_v: float = -np.pi / 2) -> np.ndarray:
    """V_AB of Eq. 7."""
    return coupling_potential(omega, phi_v)


def correlated_state(t_a: float = 2.0, t_b: float = 1.0, phi_chi: float = 0.0) -> np.ndarray:
    """rho_A x rho_B + chi of Eq. 10 (maximal concurrence)."""
    return optimal_correlation(t_a, t_b, phi_chi).state()


def chi_matrix(t_a: float = 2.0, t_b: float = 1.0) -> np.ndarray:
    """chi of Eq. 10 (phi_chi = 0)."""
    return optimal_correlation(t_a, t_b).matrix


# ----------------------------------------------------------------------------------------------
# QuTiP oracle
# ----------------------------------------------------------------------------------------------


def _qt_bath(q, kappa, gamma, temp, n_exp, expansion, dims):
    cls = QtDLBath if expansion == "matsubara" else QtPadeBath
    return cls(qt.Qobj(q, dims=dims), lam=kappa, gamma=gamma, T=temp, Nk=n_exp)


def qutip_reference(segments, bath_params, depth, rho0, dims):
    """Run QuTiP's HEOMSolver over piecewise-constant segments [(H, times), ...].

    Returns rho (n_t, d, d) and heat currents (n_t, n_baths) at the concatenated times
    (the first time of each later segment repeats the last of the previous one).
    """
    qbaths = [_qt_bath(q, *p, dims) for q, p in bath_params]
    qs = [q for q, _ in bath_params]
    opts = dict(rtol=1e-11, atol=1e-13, nsteps=10**8, store_ados=True, progress_bar=False)
    state = qt.Qobj(rho0, dims=dims)
    rhos, currents = [], []
    for h, times in segments:
        solver = QtHEOMSolver(qutip_liouvillian(h, qbaths, dims), qbaths, max_depth=depth, options=opts)
        res = solver.run(state, times)
        heat = qutip_heat_currents(qbaths, qs, h)
        for st in res.ado_states:
            rhos.append(st.rho.full())
            currents.append([current(None, st) for current in heat])
        state = res.ado_states[-1]
    return np.array(rhos), np.array(currents)


def qpump_run(segments, bath_params, depth, rho0, **kw):
    baths = [DrudeLorentzBath(q, *p) for q, p in bath_params]
    solver = HEOMSolver(segments[0][0], baths, depth=depth, **kw)
    state = rho0
    rhos, currents = [], []
    for h, times in segments:
        solver.set_hamiltonian(h)
        res = solver.run(state, times)
        rhos.append(res.rho)
        currents.append(res.heat_current)
        state = res.final_state
    return np.concatenate(rhos), np.concatenate(currents), solver


CASES = {
    # name: (segments builder, bath params, depth, rho0, dims)
    "qubit_one_bath": (
        lambda: [(0.5 * SZ + 0.25 * SX, np.linspace(0, 8, 41))],
        [(SX, (0.05, 1.0, 1.0, 2, "matsubara"))],
        4,
        np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]]),
        [[2], [2]],
    ),
    "pump_V_on_matsubara": (
        lambda: [(H0 + v_ab(), np.linspace(0, 8, 41))],
        [(QA, (0.01, 2.0, 2.0, 2, "matsubara")), (QB, (0.023, 2.0, 1.0, 2, "matsubara"))],
        3,
        correlated_state(),
        DIMS,
    ),
    "pump_V_switched_off": (
        lambda: [
            (H0 + v_ab(), np.linspace(0, 4, 21)),
            (H0, np.linspace(4, 9, 26)),
        ],
        [(QA, (0.01, 2.0, 2.0, 2, "matsubara")), (QB, (0.023, 2.0, 1.0, 2, "matsubara"))],
        3,
        correlated_state(),
        DIMS,
    ),
    "pump_pade_second_parameters": (
        lambda: [
            (H0 + v_ab(0.3, np.pi / 3), np.linspace(0, 3, 16)),
            (H0, np.linspace(3, 7, 21)),
        ],
        [(QA, (0.05, 1.0, 1.5, 2, "pade")), (QB, (0.08, 1.0, 0.7, 2, "pade"))],
        3,
        correlated_state(1.5, 0.7, 0.4),
        DIMS,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamics_match_qutip(name):
    build, bath_params, depth, rho0, dims = CASES[name]
    segments = build()
    rho_ref, j_ref = qutip_reference(segments, bath_params, depth, rho0, dims)
    rho, j, _ = qpump_run(segments, bath_params, depth, rho0)
    assert rho.shape == rho_ref.shape and j.shape == j_ref.shape
    assert np.max(np.abs(rho - rho_ref)) < 1e-7
    assert np.max(np.abs(j - j_ref)) < 1e-7
    # the comparison is not vacuous: the currents are far from zero
    assert np.max(np.abs(j_ref)) > 1e-3


def test_steady_state_matches_qutip():
    bath_params = [(QA, (0.01, 2.0, 2.0, 2, "matsubara")), (QB, (0.023, 2.0, 1.0, 2, "matsubara"))]
    h = H0 + v_ab()
    qbaths = [_qt_bath(q, *p, DIMS) for q, p in bath_params]
    liou = qutip_liouvillian(h, qbaths, DIMS)
    ref, _ = QtHEOMSolver(liou, qbaths, max_depth=3, options={"progress_bar": False}).steady_state()
    solver = HEOMSolver(h, [DrudeLorentzBath(q, *p) for q, p in bath_params], depth=3)
    ss = solver.steady_state()
    assert isinstance(ss, ADOState)
    assert ss.ados.shape == (84, 4, 4)
    assert np.max(np.abs(ss.rho - ref.full())) < 1e-9
    assert abs(np.trace(ss.rho) - 1) < 1e-12


# ----------------------------------------------------------------------------------------------
# Bath exponents
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expansion", ["matsubara", "pade"])
@pytest.mark.parametrize("params", [(0.01, 2.0, 2.0, 2), (0.05, 1.0, 0.3, 4), (0.2, 3.0, 5.0, 1)])
def test_exponents_match_qutip(expansion, params):
    kappa, gamma, temp, n_exp = params
    ours = DrudeLorentzBath(SX, kappa, gamma, temp, n_exp=n_exp, expansion=expansion)
    ref = _qt_bath(SX, kappa, gamma, temp, n_exp, expansion, [[2], [2]])
    ref_c = [e.ck + 1j * (e.ck2 or 0.0) for e in ref.exponents]
    ref_nu = [e.vk for e in ref.exponents]
    assert len(ours.exponents) == n_exp + 1 == len(ref_c)
    for e, c, nu in zip(ours.exponents, ref_c, ref_nu, strict=True):
        assert abs(e.c - c) < 1e-12 * max(1.0, abs(c))
        assert abs(e.nu - nu) < 1e-10 * nu
    assert ours.exponents[0].kind == "drude"
    assert all(e.kind == expansion for e in ours.exponents[1:])
    assert abs(ours.delta - ref.terminator()[0].real) < 1e-12
    # closed form: sum_k Re(c_k)/nu_k + delta = 2 kappa T / gamma
    s = sum(e.c.real / e.nu for e in ours.exponents)
    assert abs(s + ours.delta - 2 * kappa * temp / gamma) < 1e-14
    no_term = DrudeLorentzBath(SX, kappa, gamma, temp, n_exp=n_exp, expansion=expansion, terminator=False)
    assert no_term.delta == 0.0


def test_matsubara_frequencies_sanity():
    bath = DrudeLorentzBath(SX, 0.01, 2.0, 2.0, n_exp=2)
    nus = [e.nu for e in bath.exponents]
    assert nus[0] == 2.0
    assert np.allclose(nus[1:], [12.566370614359172, 25.132741228718345], rtol=1e-14)
    c0 = bath.exponents[0].c
    assert np.isclose(c0, 0.01 * 2.0 * (1 / np.tan(0.5) - 1j), rtol=1e-14)


def test_ado_count_and_labels():
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    solver = HEOMSolver(H0, baths, depth=3)
    assert solver.n_ados == 84
    assert solver.labels.shape == (84, 6)
    assert np.all(solver.labels[0] == 0)
    assert np.all(solver.labels.sum(axis=1) <= 3)
    assert np.all(np.diff(solver.labels.sum(axis=1)) >= 0)  # tier order
    deep = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0, n_exp=3), DrudeLorentzBath(QB, 0.023, 2.0, 1.0, n_exp=3)]
    assert HEOMSolver(H0, deep, depth=8).n_ados == 12870


# ----------------------------------------------------------------------------------------------
# Physics oracles
# ----------------------------------------------------------------------------------------------


def test_pure_dephasing_exact_coherence():
    """Q = sigma_z commutes with H: rho_01(t) = rho_01(0) e^{i w t} e^{-Gamma(t)} (Drude bath)."""
    omega, kappa, gamma, temp = 1.0, 0.02, 1.0, 1.0
    bath = DrudeLorentzBath(SZ, kappa, gamma, temp, n_exp=6, expansion="pade")
    solver = HEOMSolver(0.5 * omega * SZ, [bath], depth=6)
    rho0 = np.full((2, 2), 0.5, dtype=complex)
    t = np.linspace(0, 10, 51)
    res = solver.run(rho0, t)
    # Exact Gamma(t) = 4 Int_0^t Int_0^s Re C(u) du ds with the full Matsubara series:
    # each term c e^{-nu u} contributes c (t/nu - (1 - e^{-nu t})/nu^2).
    n_terms = 20000
    nu = 2 * np.pi * temp * np.arange(1, n_terms + 1)
    c_m = 4 * kappa * gamma * temp * nu / (nu**2 - gamma**2)
    c0 = kappa * gamma / np.tan(gamma / (2 * temp))
    rates = np.concatenate([[gamma], nu])[:, None]
    amps = np.concatenate([[c0], c_m])[:, None]
    gam = np.sum(amps * (t / rates - (1 - np.exp(-rates * t)) / rates**2), axis=0)
    # tail k > n_terms: c_k / nu_k ~ 4 kappa gamma T / nu_k^2, summed in closed form
    gam += t * 4 * kappa * gamma * temp / (2 * np.pi * temp) ** 2 / n_terms
    exact = 0.5 * np.exp(1j * omega * t) * np.exp(-4 * gam)
    # H = w sigma_z / 2 with sigma_z = diag(-1, 1): rho_01 rotates as e^{-i(E0 - E1)t} = e^{i w t}
    assert np.max(np.abs(res.rho[:, 0, 1] - exact)) < 1e-6
    assert np.max(np.abs(res.rho[:, 0, 0] - 0.5)) < 1e-12  # populations untouched
    assert np.abs(res.rho[-1, 0, 1]) < 0.5 * 0.9  # the coherence did decay


def test_zero_coupling_is_closed_evolution():
    rho0 = correlated_state()
    h = H0 + v_ab()
    t = np.linspace(0, 12, 25)
    baths = [DrudeLorentzBath(QA, 0.0, 2.0, 2.0), DrudeLorentzBath(QB, 0.0, 2.0, 1.0)]
    res = HEOMSolver(h, baths, depth=3).run(rho0, t)
    exact = np.array([scipy.linalg.expm(-1j * h * s) @ rho0 @ scipy.linalg.expm(1j * h * s) for s in t])
    assert np.max(np.abs(res.rho - exact)) < 1e-12
    assert np.max(np.abs(res.heat_current)) < 1e-14
    # small kappa: deviation of order kappa
    weak = [DrudeLorentzBath(QA, 1e-7, 2.0, 2.0), DrudeLorentzBath(QB, 1e-7, 2.0, 1.0)]
    dev = np.max(np.abs(HEOMSolver(h, weak, depth=3).run(rho0, t).rho - exact))
    assert 1e-10 < dev < 1e-5


def _pump_solver(t_a, t_b, h=None, depth=3, expansion="matsubara"):
    baths = [
        DrudeLorentzBath(QA, 0.01, 2.0, t_a, expansion=expansion),
        DrudeLorentzBath(QB, 0.023, 2.0, t_b, expansion=expansion),
    ]
    return HEOMSolver(H0 + v_ab() if h is None else h, baths, depth=depth)


def test_equal_temperatures_no_steady_current():
    # The truncated hierarchy itself carries a tiny spurious current (7e-9 with Matsubara at
    # depth 3); the Pade expansion at depth 4 is converged well below 1e-10.
    solver = _pump_solver(1.5, 1.5, depth=4, expansion="pade")
    ss = solver.steady_state()
    res = solver.run(ss, [0.0, 0.5])
    assert np.max(np.abs(res.heat_current)) < 1e-10
    # stationary: propagating does not change it
    assert np.max(np.abs(res.rho[1] - res.rho[0])) < 1e-9


def test_nonequilibrium_steady_state_current_balance():
    solver = _pump_solver(2.0, 1.0)
    ss = solver.steady_state()
    res = solver.run(ss, [0.0, 1.0])
    j = res.heat_current
    assert np.all(np.abs(j[:, 0] + j[:, 1]) < 1e-10)
    # heat flows from hot A to cold B: out of A (negative), into B (positive)
    assert j[0, 0] < -1e-6 and j[0, 1] > 1e-6


def test_first_law_along_trajectory():
    h = H0 + v_ab()
    solver = _pump_solver(2.0, 1.0, h)
    t = np.linspace(0, 10, 2001)
    res = solver.run(correlated_state(), t)
    e_sys = np.einsum("ij,tji->t", h, res.rho).real
    e_int = res.interaction_energy.sum(axis=1)
    heat_out = scipy.integrate.cumulative_simpson(res.heat_current.sum(axis=1), x=t, initial=0)
    total = e_sys + e_int + heat_out
    assert np.max(np.abs(total - total[0])) < 1e-7
    assert np.max(np.abs(e_int)) > 1e-4  # interaction energy is not negligible here


@pytest.mark.parametrize("terminator", [True, False])
def test_first_law_with_baths_whose_couplings_do_not_commute(terminator):
    """Two baths on one qubit through sigma_x and sigma_z: a terminator then also acts on the other
    bath's first-tier ADOs, and the energy it takes from that bath's interaction energy must be
    counted in its own heat current (it was not: the sum drifted by 2e-3 over t = 6)."""
    h = 0.5 * SZ + 0.25 * SX
    baths = [DrudeLorentzBath(SX, 0.02, 1.0, 1.0, n_exp=1, terminator=terminator),
             DrudeLorentzBath(SZ, 0.02, 1.0, 1.0, n_exp=1, terminator=terminator)]
    t = np.linspace(0, 12, 2401)
    res = HEOMSolver(h, baths, depth=5).run(np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]]), t)
    energy = np.einsum("ij,tji->t", h, res.rho).real + res.interaction_energy.sum(axis=1)
    total = energy + scipy.integrate.cumulative_simpson(res.heat_current.sum(axis=1), x=t, initial=0)
    assert np.max(np.abs(total - total[0])) < 1e-7
    assert np.min(np.abs(res.heat_current[:, 1])) > 1e-3  # heat does flow throughout


def test_trace_and_hermiticity_preserved():
    solver = _pump_solver(2.0, 1.0)
    res = solver.run(correlated_state(), np.linspace(0, 30, 31))
    tr = np.trace(res.rho, axis1=1, axis2=2)
    assert np.max(np.abs(tr - 1)) < 1e-12
    assert np.max(np.abs(res.rho - np.conj(np.transpose(res.rho, (0, 2, 1))))) < 1e-12


# ----------------------------------------------------------------------------------------------
# API behaviour
# ----------------------------------------------------------------------------------------------


def test_continuation_and_set_hamiltonian_keep_the_hierarchy():
    solver = _pump_solver(2.0, 1.0)
    rho0 = correlated_state()
    full = solver.run(rho0, np.linspace(0, 6, 13))
    first = solver.run(rho0, np.linspace(0, 3, 7))
    second = solver.run(first.final_state, np.linspace(3, 6, 7))
    assert np.max(np.abs(second.rho[-1] - full.rho[-1])) < 1e-9
    assert np.max(np.abs(second.heat_current[-1] - full.heat_current[-1])) < 1e-9
    # switching H keeps the ADOs: the interaction energy is continuous across the switch
    solver.set_hamiltonian(H0)
    assert solver.n_ados == 84
    third = solver.run(second.final_state, [6.0, 6.5])
    assert np.allclose(third.interaction_energy[0], second.interaction_energy[-1], atol=1e-14)
    assert np.allclose(third.rho[0], second.rho[-1], atol=1e-14)
    assert third.final_state.ados.shape == (84, 4, 4)
    assert set(third.stats) >= {"n_ados", "steps", "rhs_evaluations", "wall_time_s"}
    assert third.stats["n_ados"] == 84 and third.stats["rhs_evaluations"] > 0


def test_result_shapes_and_ado_lookup():
    solver = _pump_solver(2.0, 1.0)
    res = solver.run(correlated_state(), np.linspace(0, 1, 5), progress=True)
    assert res.times.shape == (5,)
    assert res.rho.shape == (5, 4, 4) and res.rho.dtype == complex
    assert res.heat_current.shape == (5, 2) and res.interaction_energy.shape == (5, 2)
    st = res.final_state
    assert np.array_equal(st.ado([0] * 6), st.rho)
    with pytest.raises(InvalidParameterError):
        st.ado([5, 0, 0, 0, 0, 0])


def test_generic_bath_equals_drude_lorentz():
    dl = DrudeLorentzBath(SX, 0.05, 1.0, 1.0, n_exp=2)
    gen = ExponentialBath(SX, [e.c for e in dl.exponents], [e.nu for e in dl.exponents], dl.delta)
    h = 0.5 * SZ + 0.2 * SX
    rho0 = np.array([[0.2, 0.1], [0.1, 0.8]], dtype=complex)
    t = np.linspace(0, 5, 11)
    a = HEOMSolver(h, [dl], depth=4).run(rho0, t)
    b = HEOMSolver(h, [gen], depth=4).run(rho0, t)
    assert np.max(np.abs(a.rho - b.rho)) == 0.0
    assert gen.exponents[0].kind == "generic"


# ----------------------------------------------------------------------------------------------
# Complex exponents: underdamped baths, QuTiP's real/imaginary form
# ----------------------------------------------------------------------------------------------


def _qutip_exponents_as_pairs(qbath) -> list[tuple[complex, complex, complex]]:
    """(c, cbar, nu) of QuTiP's exponents: C = C_R + i C_I and C* = C_R - i C_I."""
    out = []
    for e in qbath.exponents:
        kind = e.type.name
        if kind == "R":
            out.append((e.ck, e.ck, e.vk))
        elif kind == "I":
            out.append((1j * e.ck, -1j * e.ck, e.vk))
        else:
            out.append((e.ck + 1j * e.ck2, e.ck - 1j * e.ck2, e.vk))
    return out


# (lam, gamma, w0, T, n_exp): underdamped, strongly underdamped at low T, overdamped (w0 < gamma/2)
UNDERDAMPED = [(0.1, 0.5, 1.0, 0.5, 2), (0.3, 0.1, 2.0, 0.2, 3), (0.2, 3.0, 1.0, 1.0, 2)]


@pytest.mark.parametrize("params", UNDERDAMPED[:2])
def test_underdamped_exponents_match_qutip(params):
    lam, gamma, w0, temp, n_exp = params
    ours = UnderdampedBath(SX, lam, gamma, w0, temp, n_exp=n_exp)
    ref = QtUnderdampedBath(qt.sigmax(), lam=lam, gamma=gamma, w0=w0, T=temp, Nk=n_exp)
    pairs = _qutip_exponents_as_pairs(ref)
    assert len(ours.exponents) == len(pairs) == n_exp + 2  # one exponent per QuTiP "RI" pair
    for e, (c, cbar, nu) in zip(ours.exponents, pairs, strict=True):
        scale = max(abs(c), abs(cbar))
        assert abs(e.nu - nu) < 1e-12 * abs(nu)
        assert abs(e.c - c) < 1e-12 * scale and abs(e.cbar - cbar) < 1e-12 * scale
    assert [e.kind for e in ours.exponents] == ["underdamped"] * 2 + ["matsubara"] * n_exp


@pytest.mark.parametrize("params", UNDERDAMPED)
def test_underdamped_expansion_is_the_correlation_function(params):
    """Also where QuTiP has no answer: overdamped (w0 < gamma/2) its exponents are NaN."""
    lam, gamma, w0, temp, n_exp = params
    ours = UnderdampedBath(SX, lam, gamma, w0, temp, n_exp=n_exp)
    assert all(e.nu.real > 0 for e in ours.exponents)
    # The expansion is the correlation function C(t) = (1/pi) Int J(w) (coth(w/2T) cos wt - i sin wt)
    # dw, by quadrature (QuTiP's UnderDampedEnvironment.correlation_function is itself a
    # quadrature, good to only ~1e-6 here); the Matsubara tail decays as 1/n_exp.
    many = UnderdampedBath(SX, lam, gamma, w0, temp, n_exp=4000)

    def symmetrized(w: float) -> float:  # J(w) coth(w / 2T), finite at w = 0
        x = w / np.tanh(w / (2 * temp)) if w > 0 else 2 * temp
        return lam**2 * gamma * x / ((w0**2 - w**2) ** 2 + gamma**2 * w**2)

    for t in (0.3, 1.0, 4.0):
        re = scipy.integrate.quad(symmetrized, 0, np.inf, weight="cos", wvar=t, epsabs=1e-14,
                                  limit=500, limlst=200)[0]
        im = scipy.integrate.quad(ours.spectral_density, 0, np.inf, weight="sin", wvar=t, epsabs=1e-14,
                                  limit=500, limlst=200)[0]
        exact = (re - 1j * im) / np.pi
        assert abs(many.correlation(t) - exact) < 1e-6 * abs(ours.correlation(0.0))
        assert abs(ours.correlation(t).imag - exact.imag) < 1e-10 * abs(ours.correlation(0.0))


def test_underdamped_spectral_density_and_errors():
    bath = UnderdampedBath(SX, 0.2, 0.5, 1.0, 0.5)
    w = np.array([0.3, 1.0, 2.5])
    assert np.allclose(bath.spectral_density(w), 0.04 * 0.5 * w / ((1 - w**2) ** 2 + 0.25 * w**2),
                       rtol=1e-15)
    with pytest.raises(InvalidParameterError, match="critical damping"):
        UnderdampedBath(SX, 0.2, 2.0, 1.0, 0.5)
    for kwargs, word in [(dict(w0=0.0), "w0"), (dict(gamma=-1.0), "gamma"), (dict(lam=-0.1), "lam"),
                         (dict(T=0.0), "T"), (dict(n_exp=-1), "n_exp")]:
        args = dict(Q=SX, lam=0.1, gamma=0.5, w0=1.0, T=0.5)
        args.update(kwargs)
        with pytest.raises(InvalidParameterError, match=word):
            UnderdampedBath(**args)


def test_complex_rates_need_no_type_error_and_get_their_conjugate_partner():
    pair = ExponentialBath(SZ, [0.1, 0.1], [0.05 + 1j, 0.05 - 1j])  # the example
    assert [e.nu for e in pair.exponents] == [0.05 + 1j, 0.05 - 1j]
    assert [e.cbar for e in pair.exponents] == [0.1, 0.1]
    # A rate without its partner gets one (c = 0) so that C* is expressed in the same exponentials.
    single = ExponentialBath(SZ, [0.2 + 0.1j], [0.3 + 2j])
    assert len(single.exponents) == 2
    t = np.linspace(0, 3, 7)
    cbar_sum = sum(e.cbar * np.exp(-e.nu * t) for e in single.exponents)
    assert np.max(np.abs(cbar_sum - np.conj(single.correlation(t)))) < 1e-15
    with pytest.raises(InvalidParameterError, match=r"Re nu\[0\]"):
        ExponentialBath(SZ, [0.1], [-0.5 + 1j])
    with pytest.raises(InvalidParameterError, match="vk_imag"):
        ExponentialBath.from_real_imag(SZ, [0.1], [1.0], [0.1], [0.0 + 1j])


def _underdamped_pair(lam=0.1, gamma=0.5, w0=1.0, temp=0.5, n_exp=2):
    return (UnderdampedBath(SX, lam, gamma, w0, temp, n_exp=n_exp),
            QtUnderdampedBath(qt.sigmax(), lam=lam, gamma=gamma, w0=w0, T=temp, Nk=n_exp))


def test_underdamped_dynamics_and_heat_current_match_qutip():
    """A qubit with an underdamped bath and a Drude-Lorentz one: rho and both heat currents."""
    h = 0.5 * SZ + 0.25 * SX
    ud, qt_ud = _underdamped_pair()
    dl = DrudeLorentzBath(SZ, 0.02, 1.0, 1.0, n_exp=1)
    qt_dl = _qt_bath(SZ, 0.02, 1.0, 1.0, 1, "matsubara", [[2], [2]])
    rho0 = np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]])
    t = np.linspace(0, 12, 49)
    opts = dict(rtol=1e-11, atol=1e-13, nsteps=10**8, store_ados=True, progress_bar=False)
    qbaths = [qt_ud, qt_dl]
    ref = QtHEOMSolver(qutip_liouvillian(h, qbaths, [[2], [2]]), qbaths, max_depth=5,
                       options=opts).run(qt.Qobj(rho0), t)
    currents = qutip_heat_currents(qbaths, [SX, SZ], h)
    j_ref = np.array([[cur(None, st) for cur in currents] for st in ref.ado_states])
    rho_ref = np.array([st.rho.full() for st in ref.ado_states])
    res = HEOMSolver(h, [ud, dl], depth=5).run(rho0, t)
    assert np.max(np.abs(res.rho - rho_ref)) < 1e-7
    assert np.max(np.abs(res.heat_current - j_ref)) < 1e-7
    assert np.max(np.abs(j_ref[:, 0])) > 1e-3  # the underdamped bath's current is not trivial
    # The first law along the run: <H_S> + sum_K <H_I^K> + Int_0^t sum_K j_K is constant.
    fine = np.linspace(0, 12, 2401)
    res = HEOMSolver(h, [ud, dl], depth=5).run(rho0, fine)
    energy = np.einsum("ij,tji->t", h, res.rho).real + res.interaction_energy.sum(axis=1)
    total = energy + scipy.integrate.cumulative_simpson(res.heat_current.sum(axis=1), x=fine, initial=0)
    assert np.max(np.abs(total - total[0])) < 1e-7


def test_underdamped_steady_state_matches_qutip():
    h = 0.5 * SZ + 0.25 * SX
    ud, qt_ud = _underdamped_pair(lam=0.2, gamma=0.4, w0=1.2, temp=0.7, n_exp=2)
    ref, _ = QtHEOMSolver(qutip_liouvillian(h, [qt_ud], [[2], [2]]), [qt_ud], max_depth=5,
                          options={"progress_bar": False}).steady_state()
    ss = HEOMSolver(h, [ud], depth=5).steady_state()
    assert np.max(np.abs(ss.rho - ref.full())) < 1e-9
    assert np.max(np.abs(ss.rho - np.diag(np.diag(ss.rho)))) > 1e-3  # the bath dresses the state


def test_underdamped_pure_dephasing_is_the_exact_decoherence():
    """Q = sigma_z commutes with H: rho_01(t) = rho_01(0) e^{i w t} e^{-Gamma(t)},
    Gamma(t) = 4 Int_0^t (t - u) C_R(u) du, C_R = sum_k A_k e^{-nu_k u} with A_k = (c_k + cbar_k)/2
    (exact for the expansion the hierarchy uses); the oscillation of the mode shows in Gamma."""
    omega = 1.0
    bath = UnderdampedBath(SZ, 0.3, 0.3, 1.0, 0.4, n_exp=3)
    solver = HEOMSolver(0.5 * omega * SZ, [bath], depth=8)
    t = np.linspace(0, 15, 61)
    res = solver.run(np.full((2, 2), 0.5, dtype=complex), t)
    gam = np.zeros_like(t, dtype=complex)
    for e in bath.exponents:
        a = 0.5 * (e.c + e.cbar)
        gam += a * (e.nu * t - 1 + np.exp(-e.nu * t)) / e.nu**2
    assert np.max(np.abs(gam.imag)) < 1e-15
    exact = 0.5 * np.exp(1j * omega * t) * np.exp(-4 * gam.real)
    assert np.max(np.abs(res.rho[:, 0, 1] - exact)) < 1e-7
    # not vacuous: the coherence decays, and not monotonically (the mode gives some back)
    mag = np.abs(res.rho[:, 0, 1])
    assert mag[-1] < 0.45 and np.any(np.diff(mag) > 1e-4)


def test_real_imag_form_equals_the_underdamped_bath():
    ud, qt_ud = _underdamped_pair()
    parts = {"R": ([], []), "I": ([], [])}
    for e in qt_ud.exponents:  # QuTiP's "RI" exponents split back into their two parts
        if e.type.name in ("R", "RI"):
            parts["R"][0].append(e.ck)
            parts["R"][1].append(e.vk)
        if e.type.name == "RI":
            parts["I"][0].append(e.ck2)
            parts["I"][1].append(e.vk)
    gen = ExponentialBath.from_real_imag(SX, *parts["R"], *parts["I"])
    assert len(gen.exponents) == len(ud.exponents)
    h = 0.5 * SZ + 0.25 * SX
    rho0 = np.diag([0.0, 1.0]).astype(complex)
    t = np.linspace(0, 4, 5)
    a = HEOMSolver(h, [ud], depth=3).run(rho0, t).rho
    b = HEOMSolver(h, [gen], depth=3).run(rho0, t).rho
    assert np.max(np.abs(a - b)) < 1e-13


def _qutip_run_on_exponents(qbath, h, rho0, t, depth):
    """QuTiP's HEOMSolver on one bath (coupled through sigma_x) given by its own exponents; rho and
    the heat current."""
    opts = dict(rtol=1e-11, atol=1e-13, nsteps=10**8, store_ados=True, progress_bar=False)
    res = QtHEOMSolver(qt.liouvillian(qt.Qobj(h)), [qbath], max_depth=depth, options=opts).run(
        qt.Qobj(rho0), t)
    current = qutip_heat_currents([qbath], [SX], h)[0]
    return (np.array([st.rho.full() for st in res.ado_states]),
            np.array([current(None, st) for st in res.ado_states]))


def test_ohmic_bath_fitted_by_qutip_runs_the_same_in_both_codes():
    """QuTiP's OhmicEnvironment fitted by QuTiP ("cf", separate R and I exponents with complex
    rates): the same exponents in qpump (from_real_imag) give QuTiP's dynamics and heat current."""
    from qutip.core.environment import OhmicEnvironment

    env = OhmicEnvironment(T=1.0, alpha=0.05, wc=5.0, s=1)
    approx, _ = env.approximate("cf", np.linspace(0, 10, 300), Nr_max=2, Ni_max=2, target_rmse=None)
    parts: dict[str, tuple[list, list]] = {"R": ([], []), "I": ([], [])}
    for e in approx.exponents:
        parts[e.type.name][0].append(e.ck)
        parts[e.type.name][1].append(e.vk)
    qbath = qt.solver.heom.BosonicBath(qt.sigmax(), *parts["R"], *parts["I"], combine=False)
    assert any(abs(np.imag(v)) > 0.1 for v in parts["R"][1] + parts["I"][1])  # complex rates
    h, rho0, t = 0.5 * SZ + 0.25 * SX, np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]]), np.linspace(0, 6, 25)
    rho_ref, j_ref = _qutip_run_on_exponents(qbath, h, rho0, t, depth=3)
    bath = ExponentialBath.from_real_imag(SX, *parts["R"], *parts["I"])
    res = HEOMSolver(h, [bath], depth=3).run(rho0, t)
    assert np.max(np.abs(res.rho - rho_ref)) < 1e-7
    assert np.max(np.abs(res.heat_current[:, 0] - j_ref)) < 1e-7
    assert np.max(np.abs(j_ref)) > 1e-3


def test_a_bath_fitted_by_qpump_runs_in_qutip_too():
    """qpump's own fit of an Ohmic J (qpump.bathfit) as an ExponentialBath, and the same exponents
    in QuTiP: one dynamics; the fit's reported error is its true deviation from the closed form."""
    from qpump import bathfit

    spectral = bathfit.ohmic_spectral_density(0.05, 5.0)
    fit = bathfit.fit_spectral_density(spectral, 1.0, n_real=3, n_imag=2)
    t_fit = fit.t
    exact = bathfit.ohmic_correlation(0.05, 5.0, 1.0, t_fit)
    assert abs(np.max(np.abs(fit.correlation(t_fit) - exact)) - fit.max_error) < 1e-9 * np.abs(exact[0])
    bath = ExponentialBath.from_fit(SX, fit)
    qbath = qt.solver.heom.BosonicBath(qt.sigmax(), fit.ck_real, fit.vk_real, fit.ck_imag, fit.vk_imag,
                                       combine=False)
    h, rho0, t = 0.5 * SZ + 0.25 * SX, np.diag([0.0, 1.0]).astype(complex), np.linspace(0, 6, 25)
    rho_ref, j_ref = _qutip_run_on_exponents(qbath, h, rho0, t, depth=3)
    res = HEOMSolver(h, [bath], depth=3).run(rho0, t)
    assert np.max(np.abs(res.rho - rho_ref)) < 1e-7
    assert np.max(np.abs(res.heat_current[:, 0] - j_ref)) < 1e-7
    with pytest.raises(InvalidParameterError, match="ExponentFit"):
        ExponentialBath.from_fit(SX, object())


# ----------------------------------------------------------------------------------------------
# Smooth time-dependent Hamiltonians: H(t) = H + sum_k f_k(t) V_k
# ----------------------------------------------------------------------------------------------

PUMP_BATHS = [(QA, (0.05, 2.0, 2.0, 2, "matsubara")), (QB, (0.08, 2.0, 1.0, 2, "matsubara"))]


def _driven_reference(f, t):
    """QuTiP's HEOMSolver with H(t) = H0 + f(t) V_AB as a QobjEvo: rho and the heat currents
    (the oracle's formula with H_S(t) at each output time)."""
    qbaths = [_qt_bath(q, *p, DIMS) for q, p in PUMP_BATHS]
    h_evo = qt.QobjEvo([qt.Qobj(H0, dims=DIMS), [qt.Qobj(v_ab(), dims=DIMS), f]])
    liou = qt.liouvillian(h_evo)
    for b in qbaths:
        liou = liou + b.terminator()[1]
    opts = dict(rtol=1e-11, atol=1e-13, nsteps=10**8, store_ados=True, progress_bar=False)
    res = QtHEOMSolver(liou, qbaths, max_depth=3, options=opts).run(qt.Qobj(correlated_state(), dims=DIMS), t)
    qs = [q for q, _ in PUMP_BATHS]
    j = np.array([[cur(None, st) for cur in qutip_heat_currents(qbaths, qs, H0 + f(tt) * v_ab())]
                  for tt, st in zip(t, res.ado_states, strict=True)])
    return np.array([st.rho.full() for st in res.ado_states]), j


@pytest.mark.parametrize("kind", ["sin2", "linear", "callable"])
def test_driven_coupling_matches_qutip_qobjevo(kind):
    """V_AB switched on over [0.5, 2.5] and off over [4, 5] (two ramps, or one Python function)."""
    on = Ramp("sin2" if kind == "callable" else kind, 0.5, 2.0)
    off = Ramp("sin2" if kind == "callable" else kind, 4.0, 1.0, 1.0, 0.0)
    t = np.linspace(0, 6, 61)
    rho_ref, j_ref = _driven_reference(lambda x: float(on(x) * off(x)), t)
    solver = HEOMSolver(H0, [DrudeLorentzBath(q, *p) for q, p in PUMP_BATHS], depth=3)
    if kind == "callable":
        solver.set_drive([(v_ab(), lambda x: float(on(x) * off(x)))])
        res = solver.run(correlated_state(), t)
        rho, j = res.rho, res.heat_current
    else:  # each ramp as its own run: the kinks of the linear ramp fall on run boundaries
        rho, j, state = [], [], correlated_state()
        for profile, part in ((on, t[t <= 3.0]), (off, t[t >= 3.0])):
            solver.set_drive([(v_ab(), profile)])
            res = solver.run(state, part)
            rho.append(res.rho if not rho else res.rho[1:])
            j.append(res.heat_current if not j else res.heat_current[1:])
            state = res.final_state
        rho, j = np.concatenate(rho), np.concatenate(j)
    assert np.max(np.abs(rho - rho_ref)) < 1e-7
    assert np.max(np.abs(j - j_ref)) < 1e-7
    # not vacuous: the drive moves the state away from the undriven run
    solver.set_drive(None)
    free = solver.run(correlated_state(), t)
    assert np.max(np.abs(free.rho - rho_ref)) > 1e-3


def test_driven_first_law_counts_the_work_of_the_drive():
    """E_S(t) = tr[H(t) rho]: d/dt (E_S + E_I) = -sum_K j_K + f'(t) <V>, integrated."""
    ramp = Ramp("sin2", 0.0, 3.0)
    solver = HEOMSolver(H0, [DrudeLorentzBath(q, *p) for q, p in PUMP_BATHS], depth=3)
    solver.set_drive([(v_ab(), ramp)])
    t = np.linspace(0, 3, 601)
    res = solver.run(correlated_state(), t)
    v_mean = np.einsum("ij,tji->t", v_ab(), res.rho).real
    h_t = H0[None] + ramp(t)[:, None, None] * v_ab()[None]
    energy = np.einsum("tij,tji->t", h_t, res.rho).real + res.interaction_energy.sum(axis=1)
    inflow = ramp.derivative(t) * v_mean - res.heat_current.sum(axis=1)
    total = energy - scipy.integrate.cumulative_simpson(inflow, x=t, initial=0)
    assert np.max(np.abs(total - total[0])) < 1e-8
    assert abs(scipy.integrate.simpson(ramp.derivative(t) * v_mean, x=t)) > 5e-4  # work: -7.9e-4


def test_ramp_profile_and_drive_errors():
    lin = Ramp("linear", 1.0, 2.0, 0.0, 4.0)
    assert lin(0.0) == 0.0 and lin(2.0) == 2.0 and lin(5.0) == 4.0
    assert lin.derivative(2.0) == 2.0 and lin.derivative(0.5) == 0.0
    sin2 = Ramp("sin2", 0.0, 1.0)
    x = np.linspace(0.01, 0.99, 7)
    numeric = (sin2(x + 1e-6) - sin2(x - 1e-6)) / 2e-6
    assert np.max(np.abs(sin2.derivative(x) - numeric)) < 1e-8
    with pytest.raises(InvalidParameterError, match="ramp = 'cubic'"):
        Ramp("cubic", 0.0, 1.0)
    with pytest.raises(InvalidParameterError, match="ramp_time"):
        Ramp("sin2", 0.0, 0.0)
    solver = HEOMSolver(0.5 * SZ, [DrudeLorentzBath(SX, 0.05, 1.0, 1.0)], depth=2)
    with pytest.raises(InvalidParameterError, match=r"drive\[0\].V"):
        solver.set_drive([(np.array([[0, 1], [0, 0]]), sin2)])
    with pytest.raises(InvalidParameterError, match="neither a Ramp nor callable"):
        solver.set_drive([(SX, 0.5)])
    solver.set_drive([(SX, sin2)])
    with pytest.raises(InvalidParameterError, match="driven"):
        solver.steady_state()

    def broken(t: float) -> float:
        if t > 0.5:
            raise ValueError("profile undefined beyond 0.5")
        return 0.1

    solver.set_drive([(SX, broken)])
    with pytest.raises(ValueError, match="undefined beyond"):
        solver.run(np.eye(2) / 2, [0.0, 1.0])
    solver.set_drive([(SX, lambda t: float("nan"))])
    with pytest.raises(IntegrationError, match="profile"):
        solver.run(np.eye(2) / 2, [0.0, 1.0])
    solver.set_drive(None)
    assert solver.drive == []
    solver.run(np.eye(2) / 2, [0.0, 1.0])  # usable again


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(kappa=-0.1), "kappa"),
        (dict(gamma=0.0), "gamma"),
        (dict(gamma=-1.0), "gamma"),
        (dict(T=0.0), "T"),
        (dict(T=float("nan")), "T"),
        (dict(kappa=float("inf")), "kappa"),
        (dict(n_exp=-1), "n_exp"),
        (dict(n_exp=1.5), "n_exp"),
        (dict(expansion="taylor"), "expansion"),
        (dict(Q=np.array([[0, 1], [0, 0]])), "Hermitian"),
        (dict(Q=np.ones((2, 3))), "Q"),
        (dict(Q=np.array([[np.nan, 0], [0, 1]])), "Q"),
    ],
)
def test_bath_errors(kwargs, word):
    args = dict(Q=SX, kappa=0.1, gamma=1.0, T=1.0)
    args.update(kwargs)
    with pytest.raises(InvalidParameterError, match=word):
        DrudeLorentzBath(**args)


def test_bath_error_names_value():
    with pytest.raises(InvalidParameterError, match=r"kappa = -0\.1"):
        DrudeLorentzBath(SX, -0.1, 1.0, 1.0)
    with pytest.raises(InvalidParameterError, match="nu"):
        ExponentialBath(SX, [1.0], [-1.0])
    with pytest.raises(InvalidParameterError):
        ExponentialBath(SX, [1.0, 2.0], [1.0])


def test_solver_errors():
    bath = DrudeLorentzBath(SX, 0.1, 1.0, 1.0)
    with pytest.raises(InvalidParameterError, match="depth"):
        HEOMSolver(SZ, [bath], depth=-1)
    with pytest.raises(InvalidParameterError, match="Hermitian"):
        HEOMSolver(np.array([[0, 1], [0, 0]]), [bath])
    with pytest.raises(InvalidParameterError, match="shape"):
        HEOMSolver(H0, [bath])
    with pytest.raises(InvalidParameterError, match="H"):
        HEOMSolver(np.array([[np.inf, 0], [0, 1]]), [bath])
    with pytest.raises(InvalidParameterError):
        HEOMSolver(SZ, ["not a bath"])
    for method in ("adams", "etdrk4"):
        with pytest.raises(InvalidParameterError, match="method= was removed in 0.2: the exponential Adams"):
            HEOMSolver(SZ, [bath], method=method)
    solver = HEOMSolver(SZ, [bath], depth=2)
    with pytest.raises(InvalidParameterError, match="rho0"):
        solver.run(np.eye(3) / 3, [0, 1])
    with pytest.raises(InvalidParameterError, match="non-decreasing"):
        solver.run(np.eye(2) / 2, [1.0, 0.5])
    with pytest.raises(InvalidParameterError, match="non-finite"):
        solver.run(np.eye(2) / 2, [0.0, np.nan])
    with pytest.raises(InvalidParameterError, match="Hermitian"):
        solver.set_hamiltonian(np.array([[0, 1j], [1j, 0]]))
    with pytest.raises(InvalidParameterError, match="shape"):
        solver.set_hamiltonian(H0)
    other = HEOMSolver(SZ, [bath], depth=3)
    with pytest.raises(InvalidParameterError, match="ADOState"):
        solver.run(other.steady_state(), [0, 1])


def test_hierarchy_too_large_is_refused_before_allocation():
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0, n_exp=6), DrudeLorentzBath(QB, 0.01, 2.0, 1.0, n_exp=6)]
    with pytest.raises(HierarchyTooLargeError) as info:
        HEOMSolver(H0, baths, depth=12, memory_limit_bytes=10**9)
    msg = str(info.value)
    assert "9657700 ADOs" in msg  # C(14 + 12, 12)
    assert "bytes" in msg and "depth" in msg and "n_exp" in msg
    assert isinstance(info.value, InvalidParameterError)
    with pytest.raises(HierarchyTooLargeError):
        HEOMSolver(H0, baths, depth=60)  # more ADOs than the default limit allows


def test_non_finite_during_integration_names_the_time():
    bath = ExponentialBath(SX, [1e300], [1.0])
    solver = HEOMSolver(0.5 * SZ, [bath], depth=3)
    with pytest.raises(IntegrationError, match=r"t = [0-9.e-]+.*smaller"):
        solver.run(np.array([[0.5, 0.5], [0.5, 0.5]]), [0.0, 1.0])


def test_ctrl_c_stops_a_long_run_and_leaves_the_solver_usable():
    """Ctrl-C (interrupt_main from another thread) reaches a run of half a minute or more (924
    ADOs, no steady-state frame, about 1.2 ms per step here) between two steps, as
    KeyboardInterrupt; the solver runs normally afterwards."""
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    solver = HEOMSolver(H0 + v_ab(), baths, depth=6, steady_frame=False)
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    # Python's own SIGINT handler, also where the test runner was started with SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            solver.run(correlated_state(), [0.0, 2000.0])
        caught = time.perf_counter()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert fired and caught - fired[0] < 5.0
    res = solver.run(correlated_state(), np.linspace(0.0, 1.0, 5))
    assert np.all(np.isfinite(res.rho))
    assert np.max(np.abs(np.trace(res.rho, axis1=1, axis2=2) - 1)) < 1e-12


def _pump_cycle(t_off: np.ndarray, **solver_kw) -> tuple[np.ndarray, np.ndarray, list[dict], ADOState]:
    """One pump cycle (V on for tau = 6.1, then off through ``t_off``) from the dressed steady
    state plus chi of Eq. 10; returns rho, heat currents, the two runs' stats, the final state."""
    t_on = np.linspace(0, 6.1, 62)
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    start = HEOMSolver(H0, baths, depth=3).steady_state()
    ados = start.ados.copy()
    ados[0] += chi_matrix()  # Eq. 10 added to the dressed steady state
    solver = HEOMSolver(H0 + v_ab(), baths, depth=3, **solver_kw)
    a = solver.run(ADOState(ados, start.labels), t_on)
    solver.set_hamiltonian(H0)
    b = solver.run(a.final_state, t_off)
    return (
        np.concatenate([a.rho, b.rho]),
        np.concatenate([a.heat_current, b.heat_current]),
        [a.stats, b.stats],
        b.final_state,
    )


def test_default_tolerances_match_tight_reference_to_1e8():
    """Pump-like protocol (V on, then off) with dense output: defaults within 1e-8 of tight."""
    t_off = np.linspace(6.1, 26.1, 201)
    rho, heat, _, _ = _pump_cycle(t_off)
    rho_ref, heat_ref, _, _ = _pump_cycle(t_off, rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(rho - rho_ref)) < 1e-8
    assert np.max(np.abs(heat - heat_ref)) < 1e-8


def test_steady_frame_keeps_a_long_relaxation_within_1e8_in_far_fewer_steps():
    """The whole cycle of the benchmark (500 uncoupled): the default (steady-state frame on the
    long relaxation, variable order) against a tight run of the whole state."""
    t_off = np.linspace(6.1, 506.1, 1001)
    rho, heat, stats, final = _pump_cycle(t_off)
    rho_ref, heat_ref, stats_ref, final_ref = _pump_cycle(t_off, rtol=1e-11, atol=1e-13, steady_frame=False)
    _, _, stats_whole, _ = _pump_cycle(t_off, steady_frame=False)
    assert [s["steady_frame"] for s in stats] == [False, True]  # tau = 6.1 is too short to pay
    assert stats[1]["steady_frame_residual"] < 1e-14
    assert not any(s["steady_frame"] for s in stats_ref + stats_whole)
    assert np.max(np.abs(rho - rho_ref)) < 1e-8
    assert np.max(np.abs(heat - heat_ref)) < 1e-8
    assert np.max(np.abs(final.ados - final_ref.ados)) < 1e-8  # the reference is added back
    # The stationary part no longer sets the step: measured 1362 against 5706 steps.
    assert stats[1]["steps"] < 0.4 * stats_whole[1]["steps"]


def test_portable_and_avx2_step_loops_agree_bit_for_bit(monkeypatch):
    """The step loop is compiled for baseline x86-64 and for AVX2; QPUMP_PORTABLE forces the
    former, which CPUs without AVX2 run. Without FMA contraction the numbers are the same."""
    from qpump import _core

    monkeypatch.delenv("QPUMP_PORTABLE", raising=False)
    if _core.simd_path() != "avx2":
        pytest.skip("this CPU lacks AVX2: only the portable step loop runs here")
    t_off = np.linspace(6.1, 106.1, 201)
    rho, heat, stats, _ = _pump_cycle(t_off)
    monkeypatch.setenv("QPUMP_PORTABLE", "1")
    assert _core.simd_path() == "portable"
    rho_p, heat_p, stats_p, _ = _pump_cycle(t_off)
    assert [s["steps"] for s in stats] == [s["steps"] for s in stats_p]
    assert np.array_equal(rho, rho_p) and np.array_equal(heat, heat_p)


def test_steady_frame_cache_is_not_changed_by_the_caller():
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    solver = HEOMSolver(H0, baths, depth=2)
    stationary = solver.steady_state()
    stationary.ados[0] += chi_matrix()  # the caller's copy, not the cached reference
    times = np.linspace(0.0, 100.0, 11)
    res = solver.run(stationary, times)
    fresh = HEOMSolver(H0, baths, depth=2).run(stationary, times)
    assert res.stats["steady_frame"] and fresh.stats["steady_frame"]
    assert np.max(np.abs(res.rho - fresh.rho)) == 0.0
    assert not np.allclose(res.rho[-1], res.rho[0])


def test_steady_frame_at_strong_coupling_uses_gmres_and_stays_within_1e8():
    """Ten times the paper's coupling at depth 5 (7,392 unknowns: the stationary state by GMRES,
    stationary only to ~1e-14, its residual carried as a forcing): the relaxation in the frame
    against a tight run of the whole state, and in far fewer steps."""
    baths = [DrudeLorentzBath(QA, 0.1, 2.0, 2.0), DrudeLorentzBath(QB, 0.23, 2.0, 1.0)]
    start = HEOMSolver(H0, baths, depth=5).steady_state()
    ados = start.ados.copy()
    ados[0] += chi_matrix()
    times = np.linspace(0.0, 60.0, 121)
    runs = {}
    for name, kw in {"frame": {}, "whole": dict(steady_frame=False),
                     "tight": dict(rtol=1e-11, atol=1e-13, steady_frame=False)}.items():
        solver = HEOMSolver(H0, baths, depth=5, **kw)
        runs[name] = solver.run(ADOState(ados, start.labels), times)
    frame, whole, tight = runs["frame"], runs["whole"], runs["tight"]
    assert frame.stats["steady_frame"] and not whole.stats["steady_frame"]
    assert 0 < frame.stats["steady_frame_residual"] < 1e-12
    assert np.max(np.abs(frame.rho - tight.rho)) < 1e-8
    assert np.max(np.abs(frame.heat_current - tight.heat_current)) < 1e-8
    assert np.max(np.abs(frame.final_state.ados - tight.final_state.ados)) < 1e-8
    assert frame.stats["steps"] < 0.5 * whole.stats["steps"]


def test_set_stationary_is_used_like_a_solved_one_and_checked():
    """A stationary hierarchy solved before (here by another solver) and given to a fresh one
    gives the same run as solving it there; a wrong one is refused before a run, and one that is
    not stationary is not used as the frame's reference (refused where the frame is demanded)."""
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    stationary = HEOMSolver(H0, baths, depth=2).steady_state()
    start = ADOState(stationary.ados.copy(), stationary.labels)
    start.ados[0] += chi_matrix()
    times = np.linspace(0.0, 100.0, 11)
    given = HEOMSolver(H0, baths, depth=2)
    given.set_stationary(stationary)
    assert given.steady_state_info == {"method": "given"}
    np.testing.assert_array_equal(given.steady_state().ados, stationary.ados)
    res = given.run(start, times)
    solved = HEOMSolver(H0, baths, depth=2).run(start, times)
    assert res.stats["steady_frame"] and solved.stats["steady_frame"]
    assert np.max(np.abs(res.rho - solved.rho)) == 0.0
    with pytest.raises(InvalidParameterError, match="stationary is a ndarray"):
        given.set_stationary(stationary.ados)
    with pytest.raises(InvalidParameterError,
                       match=r"stationary is an ADOState of shape \(84, 4, 4\), the solver needs \(28"):
        given.set_stationary(HEOMSolver(H0, baths, depth=3).steady_state())
    with pytest.raises(InvalidStateError, match="stationary.rho has trace 2"):
        given.set_stationary(ADOState(2 * stationary.ados, stationary.labels))
    not_stationary = ADOState(start.ados, start.labels)  # chi added: L y != 0
    given.set_stationary(not_stationary)
    assert not given.run(start, times).stats["steady_frame"]
    demanding = HEOMSolver(H0, baths, depth=2, steady_frame=True)
    demanding.set_stationary(not_stationary)
    with pytest.raises(IntegrationError, match="not accurate enough"):
        demanding.run(start, times)


def test_steady_frame_choice_and_errors():
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    assert HEOMSolver(H0, baths, depth=3).steady_frame  # 84 ADOs
    assert HEOMSolver(H0, baths, depth=6).steady_frame  # 924 ADOs: GMRES solves it in 0.1 s
    assert not HEOMSolver(H0, baths, depth=3, steady_frame=False).steady_frame
    assert HEOMSolver(H0, baths, depth=6, steady_frame=True).steady_frame
    with pytest.raises(InvalidParameterError, match="steady_frame"):
        HEOMSolver(H0, baths, depth=3, steady_frame="yes")
    # A closed system has no unique steady state: automatic mode integrates the whole state,
    # a requested frame is an error.
    closed = [DrudeLorentzBath(QA, 0.0, 2.0, 2.0)]
    rho0 = correlated_state()
    times = np.linspace(0.0, 100.0, 3)
    assert not HEOMSolver(H0, closed, depth=2).run(rho0, times).stats["steady_frame"]
    with pytest.raises((InvalidParameterError, IntegrationError), match="steady"):
        HEOMSolver(H0, closed, depth=2, steady_frame=True).run(rho0, times)


@pytest.mark.parametrize("rho0,needle", [
    (2 * correlated_state(), "has trace 2"),
    (correlated_state() + 1e-6j * np.triu(np.ones((4, 4)), 1), "is not Hermitian"),
    (np.diag([0.6, 0.5, -0.1, 0.0]), "is not positive: its smallest eigenvalue is -0.1"),
])
def test_an_initial_state_that_is_not_a_density_matrix_is_refused(rho0, needle):
    solver = HEOMSolver(H0, [DrudeLorentzBath(QA, 0.01, 2.0, 2.0)], depth=2)
    with pytest.raises(InvalidStateError, match=needle):
        solver.run(rho0, [0.0, 1.0])
    whole = solver.steady_state()
    bad = ADOState(whole.ados.copy(), whole.labels)
    bad.ados[0] = rho0
    with pytest.raises(InvalidStateError, match=f"rho0.rho {needle}"):
        solver.run(bad, [0.0, 1.0])
    solver.run(correlated_state() * (1 + 1e-11), [0.0, 1.0])  # rounding is not an error


def test_progress_reports_the_time_reached_and_changes_nothing():
    baths = [DrudeLorentzBath(QA, 0.01, 2.0, 2.0), DrudeLorentzBath(QB, 0.023, 2.0, 1.0)]
    solver = HEOMSolver(H0 + v_ab(), baths, depth=5, steady_frame=False)
    times = np.linspace(0.0, 300.0, 31)
    seen: list[float] = []
    with_progress = solver.run(correlated_state(), times, progress=seen.append)
    plain = solver.run(correlated_state(), times)
    assert seen, "a run of this length reports at least once"
    assert np.all(np.diff(seen) > 0) and 0 < seen[0] and seen[-1] < 300.0
    assert np.array_equal(with_progress.rho, plain.rho)  # one propagation either way
    assert with_progress.stats["steps"] == plain.stats["steps"]


def test_the_steady_state_solve_runs_on_one_blas_thread(monkeypatch):
    """SuperLU's BLAS calls are limited to one thread: a multithreaded BLAS spins on a busy machine
    (measured 6x slower beside other jobs) and gains nothing on these small dense blocks."""
    import scipy.sparse.linalg as spla
    from threadpoolctl import threadpool_info

    seen = []
    solve = spla.spsolve

    def recording(*args, **kwargs):
        seen.append([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
        return solve(*args, **kwargs)

    monkeypatch.setattr(spla, "spsolve", recording)
    sz = np.diag([1.0, -1.0]).astype(complex)
    sx = np.array([[0, 1], [1, 0]], dtype=complex)
    HEOMSolver(0.5 * sz + 0.25 * sx, [DrudeLorentzBath(sz, 1e-4, 1.0, 0.5, n_exp=3, expansion="pade")],
               depth=2).steady_state()
    assert seen and all(threads == [1] * len(threads) and threads for threads in seen), seen


def test_qutip_objects_are_accepted_and_results_go_back_to_qutip():
    """A QuTiP user's H, Q and rho0 (Qobj) give the very numbers of the same arrays; results come
    back as Qobj with the Hamiltonian's dims (duck-typed: qpump does not import QuTiP for it)."""
    from qpump import closed, info

    h = qt.tensor(qt.sigmaz(), qt.qeye(2)) / 2 + qt.tensor(qt.qeye(2), qt.sigmaz()) / 2 \
        + 0.1 * (qt.tensor(qt.sigmap(), qt.sigmam()) + qt.tensor(qt.sigmam(), qt.sigmap()))
    q = qt.tensor(qt.sigmax(), qt.qeye(2))
    rho0 = qt.tensor(qt.basis(2, 1).proj(), qt.basis(2, 0).proj())
    times = [0.0, 0.5, 1.0]
    with_qobj = HEOMSolver(h, [DrudeLorentzBath(q, 0.02, 2.0, 1.0)], depth=2)
    result = with_qobj.run(rho0, times)
    with_arrays = HEOMSolver(h.full(), [DrudeLorentzBath(q.full(), 0.02, 2.0, 1.0)], depth=2)
    reference = with_arrays.run(rho0.full(), times)
    np.testing.assert_array_equal(result.rho, reference.rho)
    states = result.to_qutip()
    assert all(isinstance(s, qt.Qobj) and s.dims == [[2, 2], [2, 2]] for s in states)
    np.testing.assert_array_equal(states[-1].full(), result.rho[-1])
    assert result.final_state.to_qutip().dims == [[2, 2], [2, 2]]
    assert with_qobj.steady_state().to_qutip().isherm
    assert reference.to_qutip()[0].dims == [[4], [4]]  # arrays in, plain dims out
    with_qobj.set_hamiltonian(h * 2)
    assert info.concurrence(states[-1]) == pytest.approx(info.concurrence(result.rho[-1]), abs=0)
    from qpump.states import check_state

    np.testing.assert_array_equal(check_state(rho0), rho0.full())
    np.testing.assert_array_equal(closed.propagate(rho0, [1.0], h)[0],
                                  closed.propagate(rho0.full(), [1.0], h.full())[0])


def test_large_steady_states_are_solved_by_gmres_and_agree_with_the_lu(monkeypatch):
    from qpump import steady_iterative

    baths = [DrudeLorentzBath(QA, 0.1, 2.0, 2.0), DrudeLorentzBath(QB, 0.23, 2.0, 1.0)]
    h = H0 + v_ab()
    big = HEOMSolver(h, baths, depth=5)  # 462 ADOs, 7,392 unknowns
    assert big.n_ados * 16 > steady_iterative.ITERATIVE_MIN_DIM
    rho = big.steady_state().rho
    info = big.steady_state_info
    assert info["method"] == "gmres" and info["residual"] < 1e-11 and info["iterations"] > 1
    monkeypatch.setattr(steady_iterative, "ITERATIVE_MIN_DIM", 10**9)
    direct = HEOMSolver(h, baths, depth=5)
    assert np.max(np.abs(direct.steady_state().rho - rho)) < 1e-9
    assert direct.steady_state_info["method"] == "sparse LU"
