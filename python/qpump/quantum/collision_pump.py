"""The pump cycle on qubit hardware with each bath as a collision model, the heat read on the bath side.

Layout: the line a_A - A - B - a_B. Logical qubits 0 = A, 1 = B, 2 = a_A, 3 = a_B (the ancilla a_K is
bath K's collision partner, coupled to K only).

Bath ancilla. Bath K is represented by a_K in its Gibbs state at T_K, a classical mixture with excited
population p_K = 1/(1 + e^{1/T_K}): RY(2 asin sqrt p_K) on a_K, then a mid-circuit measurement. The
outcome is not fed forward, so the measurement acts on the state as dephasing in Z, which turns the
superposition into the Gibbs mixture, and it records the bit the ancilla was prepared in ("pre").

Collision. The partial swap exp(-i g (XX + YY)/2) of K and a_K, which is ``XXPlusYYGate(2 g, 0)``
(checked numerically in the tests). (XX + YY)/2 = |01><10| + |10><01| exchanges one excitation, so
the gate conserves H_K + H_{a_K}; traced over a Gibbs ancilla it is exactly the generalized amplitude
damping channel GAD(sin^2 g, p_K) (:func:`qpump.quantum.noise.gad_superoperator`), and g = pi/2 (a full
swap) replaces K's state by the Gibbs state. After the collision a_K is measured again ("post") and
reset before its next use. The heat drawn FROM bath K (docs/conventions.md: Q_A < 0 and Q_B > 0 when
the pump works) is minus the ancillas' energy change, summed over collisions; with E = (P(1) - P(0))/2
and unit gap, the per-shot estimator is sum_k (pre_k - post_k).

Cycle. rho_0 = rho_A^0 (x) rho_B^0 + chi is prepared as the two-branch mixture of
``preparation_of(corr, "mixture")`` (each branch run with its weight's share of the shots). The contact
of duration tau is n_c Strang steps of dt = tau/n_c, each U(dt/2) C_A C_B U(dt/2), with U the exact
contact circuit of :func:`qpump.quantum.contact.append_contact` and C_K one collision of strength g;
consecutive half steps are merged into one U(dt) (the same operator, half the two-qubit gates).
n_c = 0 is the contact without collisions. Then n_r relaxation collisions per qubit (V_AB off: the
free evolution commutes with the collisions, so it is left out). Finally A and B are measured.

First law. U conserves H_A + H_B + V_AB; a collision conserves H_K + H_{a_K} but not V_AB, so with
V_AB on it does work W_coll = <V>(after) - <V>(before) on the pair. With W_on = <V>(start of
contact) and W_off = -<V>(end), over one cycle

    Delta E_sys + Delta E_anc = W_on + W_off + W_coll,   Delta E_anc = -(Q_A + Q_B),

with E_sys = <H_A + H_B>. For the resonant pair U also conserves H_A + H_B and V_AB separately, so
W_coll = <V>(end) - <V>(start) and the total work vanishes exactly: the first law reduces to
Delta E_sys = Q_A + Q_B, and without noise it holds shot by shot (every circuit conserves the number
of excitations). On a device the noise is a third reservoir (depolarising noise heats towards
infinite temperature, relaxation cools), whose energy input :func:`predict_on_aer` predicts
(``residual``). The local master equation of :mod:`qpump.lindblad` counts the heat with the
coupled Hamiltonian, Q_K^lind = int Tr((H_A + H_B + V) D_K[rho]) dt; its collision-model counterpart
is Q_K + W_coll,K (:attr:`CyclePrediction.heat_global`). The two bookkeepings differ by the collision
work, which survives the continuum limit (the known thermodynamic cost of local master equations);
:func:`master_equation_contact` gives both limits exactly.

Continuum limit. With cos^2 g_K = exp(-Gamma_K dt), Gamma_K = gamma_down + gamma_up of
:class:`qpump.lindblad.LocalBath`, one collision is exactly exp(dt D_K) (GAD with damping
1 - exp(-Gamma_K dt) and the bath's Gibbs population), so the Strang cycle converges to the local
master equation at second order in dt (:meth:`CollisionCycle.continuum`): the state after the contact
and the bath-side heat (to int Tr(H_K D_K[rho]) dt). Q_K + W_coll,K converges to lindblad.py's heat only
at first order (measured ratio of errors 2 per halving of dt).

Cost on a device. Each collision costs two mid-circuit measurements and (but for the first) a reset of
its ancilla: 4 (n_c + n_r) measurements and 2 (n_c + n_r - 1) resets per circuit, plus the two final
measurements of A and B. Their durations and errors come from the backend's Target
(``target["measure"][(q,)]``, ``target["reset"][(q,)]``; :func:`measurement_costs`): on fake_sherbrooke
a measurement takes about 1.2 us with a 1-3 % assignment error, a reset 1.3 us, against 0.5 us for an
ECR gate, so the circuits are dominated by measurement time. Aer's device noise model puts thermal
relaxation on resets and the assignment error on every measurement; the idling of the other qubits
during a measurement is not in it (circuits are not scheduled), see :func:`measurement_costs` for the
estimate of that decay. The assignment error multiplies the expected bath-side heat by
1 - e_01 - e_10 of the ancilla (the offsets of pre and post cancel); ``mitigate=True`` undoes it per
bit with the backend's calibrated assignment matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.library import XXPlusYYGate

from .. import _validate as check
from ..errors import InvalidParameterError
from ..lindblad import SIGMA_MINUS, LocalBath, _commutator_superop, _dissipator_superop
from ..pump import HeatPump
from ..states import H_A, H_B, IDENTITY2, coupling_potential, excited_population
from ._aer import swap_vector
from .backends import (
    _edge_errors,
    _readout_error,
    neighbours_of,
    noise_model_of,
    readout_assignment,
    transpile_fixed,
    two_qubit_gate_count,
)
from .contact import append_contact, contact_operator
from .preparation import preparation_of
from .tomography import Estimate

__all__ = [
    "ROLES",
    "partial_swap_angle",
    "partial_swap",
    "ancilla_angle",
    "collision_channel",
    "continuum_strength",
    "CollisionCycle",
    "CyclePrediction",
    "predict",
    "heat_distribution",
    "master_equation_contact",
    "BranchCircuits",
    "cycle_circuits",
    "repeated_cycle_circuit",
    "per_cycle_heat",
    "LineLayout",
    "choose_line_layout",
    "measurement_costs",
    "predict_on_aer",
    "SampledCycle",
    "run_sampled",
    "PlanRow",
    "Plan",
    "plan",
]

#: Logical qubit roles: 0 = A, 1 = B, 2 = a_A (bath A's ancilla), 3 = a_B.
ROLES = ("A", "B", "a_A", "a_B")
_SYSTEM = {"A": 0, "B": 1}
_ANCILLA = {"A": 2, "B": 3}
#: Classical registers of a cycle circuit: the final A, B bits, then pre/post bits per bath.
_REGISTERS = ("sys", "pre_a", "post_a", "pre_b", "post_b")
#: Largest number of contact or relaxation collisions accepted (circuits beyond are pointless).
MAX_COLLISIONS = 100_000

_SIGMA_PLUS = SIGMA_MINUS.T.copy()  # |1><0|: raises to the excited state


# ---------------------------------------------------------------------------------------------
# One collision
# ---------------------------------------------------------------------------------------------

def _strength(name: str, value: float) -> float:
    g = check.finite(name, value)
    if not 0.0 <= g <= math.pi / 2:
        raise InvalidParameterError(f"{name} = {g} is outside the allowed range [0, pi/2]")
    return g


def partial_swap_angle(g: float) -> float:
    """The ``XXPlusYYGate`` angle theta = 2 g, so that XXPlusYYGate(theta, 0) = exp(-i g (XX + YY)/2).

    Parameters
    ----------
    g : float
        Collision strength in [0, pi/2] (damping sin^2 g).
    """
    return 2.0 * _strength("g", g)


def partial_swap(g: float) -> np.ndarray:
    """exp(-i g (XX + YY)/2) as a 4x4 matrix (the same in either qubit order: XX + YY is symmetric).

    With S = (XX + YY)/2 = |01><10| + |10><01| and S^2 = P the projector on {|01>, |10>},
    exp(-i g S) = 1 - P + cos(g) P - i sin(g) S.
    """
    g = _strength("g", g)
    s = np.zeros((4, 4), dtype=complex)
    s[1, 2] = s[2, 1] = 1.0
    proj = s @ s
    return np.eye(4) - proj + math.cos(g) * proj - 1j * math.sin(g) * s


def ancilla_angle(p_excited: float) -> float:
    """RY angle 2 asin(sqrt(p)) that gives the ancilla excited population ``p_excited`` in [0, 1]."""
    p = check.finite("p_excited", p_excited)
    if not 0.0 <= p <= 1.0:
        raise InvalidParameterError(f"p_excited = {p} is outside the allowed range [0, 1]")
    return 2.0 * math.asin(math.sqrt(p))


def collision_channel(g: float, p_excited: float) -> np.ndarray:
    """The channel on the system qubit of one collision with an ancilla in diag(1 - p, p), traced out.

    Returned as a 4x4 superoperator on row-major vec(rho), the convention of
    :func:`qpump.quantum.noise.gad_superoperator` (to which it is equal with damping sin^2 g).
    Qubit order (system, ancilla).
    """
    u = partial_swap(g)
    p = check.finite("p_excited", p_excited)
    if not 0.0 <= p <= 1.0:
        raise InvalidParameterError(f"p_excited = {p} is outside the allowed range [0, 1]")
    tau = np.diag([1.0 - p, p]).astype(complex)
    out = np.zeros((4, 4), dtype=complex)
    for i in range(2):
        for j in range(2):
            unit = np.zeros((2, 2), dtype=complex)
            unit[i, j] = 1.0
            big = u @ np.kron(unit, tau) @ u.conj().T
            reduced = np.einsum("ixjx->ij", big.reshape(2, 2, 2, 2))
            out[:, 2 * i + j] = reduced.reshape(-1)
    return out


def continuum_strength(rate: float, dt: float) -> float:
    """The g with cos^2 g = exp(-rate dt): one collision is then exactly exp(dt D) of a GAD semigroup of
    total rate ``rate`` = gamma_down + gamma_up (module docstring)."""
    rate = check.non_negative("rate", rate)
    dt = check.non_negative("dt", dt)
    return math.acos(math.exp(-0.5 * rate * dt))


# ---------------------------------------------------------------------------------------------
# The cycle and its exact prediction
# ---------------------------------------------------------------------------------------------

def _pair(name: str, value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        g = _strength(name, value)
        return g, g
    try:
        a, b = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} = {value!r} must be a number or a pair (A, B) of numbers "
                                    "in [0, pi/2]") from None
    return _strength(f"{name}[A]", a), _strength(f"{name}[B]", b)


@dataclass(frozen=True)
class CollisionCycle:
    """One pump cycle with collision-model baths (module docstring).

    Parameters
    ----------
    pump : HeatPump
        TA, TB, omega_c, delta, tau and the correlation (chi11, chi23) are taken from it; the bath
        parameters (kappa, gamma) only by :meth:`continuum`.
    n_c : int
        Strang steps of the contact (each with one collision per qubit), >= 0; 0 is the contact
        without collisions.
    n_r : int
        Relaxation collisions per qubit, >= 0 (n_c + n_r >= 1: something must be measured).
    g : float or (float, float)
        Strength of the contact collisions, in [0, pi/2] (one value, or one per bath (A, B)).
    g_relax : float or (float, float), optional
        Strength of the relaxation collisions (default: ``g``).
    """

    pump: HeatPump = field(default_factory=HeatPump)
    n_c: int = 0
    n_r: int = 1
    g: float | tuple[float, float] = math.pi / 2
    g_relax: float | tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pump, HeatPump):
            raise InvalidParameterError(f"pump = {self.pump!r} must be a qpump.pump.HeatPump")
        check.non_negative_int("n_c", self.n_c, MAX_COLLISIONS)
        check.non_negative_int("n_r", self.n_r, MAX_COLLISIONS)
        if self.n_c + self.n_r == 0:
            raise InvalidParameterError("n_c + n_r = 0: without a collision nothing is measured on the bath "
                                        "side; use n_c >= 1 or n_r >= 1")
        _pair("g", self.g)
        if self.g_relax is not None:
            _pair("g_relax", self.g_relax)

    @classmethod
    def continuum(cls, pump: HeatPump, n_c: int, n_r: int = 0) -> CollisionCycle:
        """The cycle whose contact collisions are exactly exp(dt D_K) of ``pump``'s local master equation
        (cos^2 g_K = exp(-Gamma_K dt), dt = tau / n_c); relaxation collisions are full swaps."""
        n_c = check.positive_int("n_c", n_c, MAX_COLLISIONS)
        dt = pump.tau / n_c
        bath_a, bath_b = _baths(pump)
        g = (continuum_strength(sum(bath_a.rates), dt), continuum_strength(sum(bath_b.rates), dt))
        return cls(pump, n_c, n_r, g, math.pi / 2)

    @property
    def strengths(self) -> tuple[float, float]:
        """Contact collision strengths (g_A, g_B)."""
        return _pair("g", self.g)

    @property
    def relax_strengths(self) -> tuple[float, float]:
        """Relaxation collision strengths (g_A, g_B)."""
        return _pair("g_relax", self.g if self.g_relax is None else self.g_relax)

    @property
    def populations(self) -> tuple[float, float]:
        """Excited populations (p_A, p_B) of the ancillas (the baths' Gibbs values)."""
        return excited_population(self.pump.TA), excited_population(self.pump.TB)

    @property
    def collisions(self) -> int:
        """Collisions per bath (each with two mid-circuit measurements)."""
        return self.n_c + self.n_r

    @property
    def mid_circuit_measurements(self) -> int:
        """Mid-circuit measurements per circuit (the final measurements of A and B not counted)."""
        return 4 * self.collisions

    @property
    def resets(self) -> int:
        """Mid-circuit resets per circuit (an ancilla is reset before each reuse)."""
        return 2 * (self.collisions - 1)

    def correlation(self):
        """The correlation chi of rho_0 (:meth:`HeatPump.correlation`)."""
        return self.pump.correlation()

    def schedule(self) -> list[tuple[str, float | str]]:
        """The cycle as events: ("U", t) for the exact contact over t, ("C", "contact" | "relax") for one
        collision per bath (A then B). Consecutive Strang half steps are merged into one U(dt)."""
        tau = self.pump.tau
        events: list[tuple[str, float | str]] = []
        if self.n_c == 0:
            events.append(("U", tau))
        else:
            dt = tau / self.n_c
            events.append(("U", dt / 2))
            for k in range(self.n_c):
                events.append(("C", "contact"))
                events.append(("U", dt if k < self.n_c - 1 else dt / 2))
        events.extend([("C", "relax")] * self.n_r)
        return events


def _baths(pump: HeatPump) -> tuple[LocalBath, LocalBath]:
    return (LocalBath(0, pump.kappa_a, pump.gamma, pump.TA), LocalBath(1, pump.kappa_b, pump.gamma, pump.TB))


def _embed(op_k: np.ndarray, op_anc: np.ndarray, bath: int) -> np.ndarray:
    """op_k on qubit K (0 = A, 1 = B) times op_anc on the ancilla; 8x8 in the order (A, B, ancilla)."""
    if bath == 0:
        return np.kron(np.kron(op_k, IDENTITY2), op_anc)
    return np.kron(np.kron(IDENTITY2, op_k), op_anc)


def _collision_unitary(g: float, bath: int) -> np.ndarray:
    """exp(-i g (XX + YY)/2) of qubit K and its ancilla on (A, B, ancilla)."""
    s = _embed(_SIGMA_PLUS, SIGMA_MINUS, bath) + _embed(SIGMA_MINUS, _SIGMA_PLUS, bath)
    proj = s @ s
    return np.eye(8) - proj + math.cos(g) * proj - 1j * math.sin(g) * s


@dataclass(frozen=True)
class CyclePrediction:
    """Exact (noise-free) bookkeeping of one cycle. Index 0 = A, 1 = B in every pair.

    Attributes
    ----------
    heat : (2,) array
        Q_A, Q_B drawn from the baths (minus the ancillas' energy change), whole cycle.
    heat_contact, heat_relax : (2,) array
        The same, split into the contact's and the relaxation's collisions.
    work_on, work_off : float
        <V>(start of contact) and -<V>(end of contact).
    work_collisions : (2,) array
        Work of the contact collisions of each bath on V_AB.
    energy_start, energy_end : (2,) array
        <H_A>, <H_B> at the start (rho_0) and at the end of the cycle.
    rho_start, rho_contact, rho_end : (4, 4) arrays
        rho_0, the state after the contact, the state at the end (qpump order).
    """

    heat: np.ndarray
    heat_contact: np.ndarray
    heat_relax: np.ndarray
    work_on: float
    work_off: float
    work_collisions: np.ndarray
    energy_start: np.ndarray
    energy_end: np.ndarray
    rho_start: np.ndarray
    rho_contact: np.ndarray
    rho_end: np.ndarray

    @property
    def work(self) -> float:
        """Total work on the pair: W_on + W_off + W_coll."""
        return float(self.work_on + self.work_off + self.work_collisions.sum())

    @property
    def delta_energy_system(self) -> float:
        """Delta <H_A + H_B> over the cycle."""
        return float((self.energy_end - self.energy_start).sum())

    @property
    def first_law_residual(self) -> float:
        """Delta E_sys + Delta E_anc - W with Delta E_anc = -(Q_A + Q_B): zero up to round-off."""
        return self.delta_energy_system - float(self.heat.sum()) - self.work

    @property
    def heat_global(self) -> np.ndarray:
        """Contact heat with lindblad.py's bookkeeping, Q_K + W_coll,K (module docstring)."""
        return self.heat_contact + self.work_collisions


def _start_state(cycle: CollisionCycle) -> np.ndarray:
    return cycle.correlation().state()


def _collide_mean(rho: np.ndarray, g: float, p: float, bath: int) -> tuple[np.ndarray, float]:
    """rho after one collision of bath ``bath`` and the heat drawn from the bath (p_before - p_after)."""
    big = np.kron(rho, np.diag([1.0 - p, p]))
    u = _collision_unitary(g, bath)
    big = u @ big @ u.conj().T
    t = big.reshape(4, 2, 4, 2)
    rho_new = np.einsum("ixjx->ij", t)
    p_after = float(np.real(t[:, 1, :, 1].trace()))
    # p tr(rho), not p: the trace drifts by round-off over many steps, and the heat must follow it for
    # the first law to close to round-off instead of to (steps)^2 times it.
    return rho_new, p * float(np.real(np.trace(rho))) - p_after


def predict(cycle: CollisionCycle, rho0: np.ndarray | None = None) -> CyclePrediction:
    """Exact prediction of ``cycle`` with numpy (each mid-circuit measurement acts as Z dephasing of the
    ancilla, which is then discarded, so only the qubits' 4x4 state is carried).

    Parameters
    ----------
    cycle : CollisionCycle
    rho0 : (4, 4) array, optional
        Start state (default rho_0 of the cycle's correlation).
    """
    pump = cycle.pump
    rho = _start_state(cycle) if rho0 is None else check.hermitian("rho0", rho0, 4)
    v = coupling_potential(pump.omega_c, pump.v_phase)
    p = cycle.populations
    gc, gr = cycle.strengths, cycle.relax_strengths
    heat_c, heat_r, w_coll = np.zeros(2), np.zeros(2), np.zeros(2)
    rho_start = rho.copy()
    work_on = float(np.real(np.trace(v @ rho)))
    rho_contact = None
    for kind, arg in cycle.schedule():
        if kind == "U":
            u = contact_operator(float(arg), pump.omega_c, pump.v_phase)
            rho = u @ rho @ u.conj().T
            continue
        if rho_contact is None and arg == "relax":
            rho_contact = rho.copy()
        for k in range(2):
            before = rho
            rho, q = _collide_mean(rho, (gc if arg == "contact" else gr)[k], p[k], k)
            if arg == "contact":
                heat_c[k] += q
                w_coll[k] += float(np.real(np.trace(v @ (rho - before))))
            else:
                heat_r[k] += q
    if rho_contact is None:
        rho_contact = rho.copy()
    energies = [np.array([np.real(np.trace(H_A @ r)), np.real(np.trace(H_B @ r))]) for r in (rho_start, rho)]
    return CyclePrediction(
        heat=heat_c + heat_r, heat_contact=heat_c, heat_relax=heat_r, work_on=work_on,
        work_off=-float(np.real(np.trace(v @ rho_contact))), work_collisions=w_coll,
        energy_start=energies[0], energy_end=energies[1], rho_start=rho_start, rho_contact=rho_contact,
        rho_end=rho)


def _assignment(readout: np.ndarray | None) -> np.ndarray:
    if readout is None:
        return np.eye(2)
    m = np.asarray(readout, dtype=float)
    if m.shape != (2, 2) or np.any(m < 0) or not np.allclose(m.sum(axis=1), 1.0):
        raise InvalidParameterError(f"readout = {m.tolist()} must be a 2x2 row-stochastic matrix "
                                    "M[true, recorded]")
    return m


def heat_distribution(cycle: CollisionCycle, rho0: np.ndarray, bath: int,
                      readout: np.ndarray | None = None) -> dict[int, float]:
    """Exact distribution of the per-shot bath-side heat sum_k (pre_k - post_k) of bath ``bath``.

    Every outcome of bath ``bath``'s measurements is followed (the qubits' state conditioned on the
    running sum of recorded bits); ``readout`` M[true, recorded] flips the recorded bits, not the state.

    Parameters
    ----------
    cycle : CollisionCycle
    rho0 : (4, 4) array
        Start state (one branch of the mixture, or the mixture).
    bath : int
        0 (A) or 1 (B).
    readout : (2, 2) array, optional
        Assignment matrix of the ancilla's readout (default perfect).
    """
    if bath not in (0, 1):
        raise InvalidParameterError(f"bath = {bath!r} must be 0 (A) or 1 (B)")
    pump = cycle.pump
    m = _assignment(readout)
    p = cycle.populations
    gc, gr = cycle.strengths, cycle.relax_strengths
    states: dict[int, np.ndarray] = {0: check.hermitian("rho0", rho0, 4)}
    for kind, arg in cycle.schedule():
        if kind == "U":
            u = contact_operator(float(arg), pump.omega_c, pump.v_phase)
            states = {q: u @ r @ u.conj().T for q, r in states.items()}
            continue
        g = gc if arg == "contact" else gr
        other = 1 - bath
        # The two collisions act on different qubits and ancillas, so they commute: the other bath's
        # collision may come first whatever the schedule's order.
        states = {q: _collide_mean(r, g[other], p[other], other)[0] for q, r in states.items()}
        u = _collision_unitary(g[bath], bath)
        new: dict[int, np.ndarray] = {}
        for q, r in states.items():
            for x, px in ((0, 1.0 - p[bath]), (1, p[bath])):
                if px == 0.0:
                    continue
                ket = np.zeros(2)
                ket[x] = 1.0
                big = u @ np.kron(r, px * np.outer(ket, ket)) @ u.conj().T
                t = big.reshape(4, 2, 4, 2)
                for y in (0, 1):
                    branch = t[:, y, :, y]
                    for rp in (0, 1):
                        for rq in (0, 1):
                            w = m[x, rp] * m[y, rq]
                            if w > 0.0:
                                key = q + rp - rq
                                new[key] = new.get(key, 0.0) + w * branch
        states = new
    return {q: float(np.real(np.trace(r))) for q, r in sorted(states.items())}


def _moments(dist: dict[int, float]) -> tuple[float, float]:
    q = np.array(list(dist.keys()), dtype=float)
    w = np.array(list(dist.values()))
    mean = float(w @ q)
    return mean, float(w @ (q - mean) ** 2)


def master_equation_contact(pump: HeatPump, rho0: np.ndarray | None = None) -> dict:
    """The contact under :mod:`qpump.lindblad`'s local master equation, exactly (augmented exponential).

    Returns
    -------
    dict
        ``rho`` at tau; ``heat_lindblad`` (Q_A, Q_B) = int Tr((H_A + H_B + V) D_K[rho]) dt, the heat of
        :class:`qpump.lindblad.LindbladSolver`; ``heat_local`` = int Tr(H_K D_K[rho]) dt, the energy that
        bath K's ancillas lose in the collision model (the limit of :attr:`CyclePrediction.heat_contact`).
    """
    from scipy.linalg import expm

    rho = pump.correlation().state() if rho0 is None else check.hermitian("rho0", rho0, 4)
    h = H_A + H_B + coupling_potential(pump.omega_c, pump.v_phase)
    baths = _baths(pump)
    dissipators = [_dissipator_superop(b.jump_operators()) for b in baths]
    generator = _commutator_superop(h) + sum(dissipators)
    n = 16
    aug = np.zeros((2 * n, 2 * n), dtype=complex)
    aug[:n, :n] = generator
    aug[n:, :n] = np.eye(n)
    block = expm(aug * pump.tau)
    vec = rho.reshape(-1)
    integral = block[n:, :n] @ vec  # int_0^tau rho dt
    final = (block[:n, :n] @ vec).reshape(4, 4)

    def heat(op: np.ndarray) -> np.ndarray:
        row = op.T.reshape(-1)  # Tr(op X) = row @ vec(X)
        return np.array([np.real(row @ (d @ integral)) for d in dissipators])

    local = np.array([heat(H_A)[0], heat(H_B)[1]])
    return {"rho": final, "heat_lindblad": heat(h), "heat_local": local}


# ---------------------------------------------------------------------------------------------
# Circuits
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BranchCircuits:
    """The circuits of one branch of the mixture.

    Attributes
    ----------
    weight : float
        Branch probability (share of the shots).
    state : (4,) array
        The branch's pure state of A and B (qpump order).
    cycle : QuantumCircuit
        Preparation, contact with collisions, relaxation collisions, final measurement of A and B.
    start : QuantumCircuit
        Preparation and measurement of A and B (the start energies).
    """

    weight: float
    state: np.ndarray
    cycle: QuantumCircuit
    start: QuantumCircuit


def _append_collision(qc: QuantumCircuit, regs: dict[str, ClassicalRegister], bath: str, index: int,
                      g: float, p: float) -> None:
    system, anc = _SYSTEM[bath], _ANCILLA[bath]
    suffix = bath.lower()
    if index > 0:
        qc.reset(anc)  # the previous collision left a_K in its post state
    if p > 0.0:
        qc.ry(ancilla_angle(p), anc)
    qc.measure(anc, regs["pre_" + suffix][index])
    if g > 0.0:
        qc.append(XXPlusYYGate(partial_swap_angle(g), 0.0), [system, anc])
    qc.measure(anc, regs["post_" + suffix][index])


def _append_schedule(qc: QuantumCircuit, regs: dict[str, ClassicalRegister], cycle: CollisionCycle,
                     first: int) -> None:
    """The contact and the collisions of one cycle (:meth:`CollisionCycle.schedule`), recording its
    collisions from bit ``first`` of the ancilla registers."""
    pump, p = cycle.pump, cycle.populations
    gc, gr = cycle.strengths, cycle.relax_strengths
    count = first
    for kind, arg in cycle.schedule():
        if kind == "U":
            append_contact(qc, float(arg), pump.omega_c, pump.v_phase, qubits=(0, 1))
            continue
        g = gc if arg == "contact" else gr
        _append_collision(qc, regs, "A", count, g[0], p[0])
        _append_collision(qc, regs, "B", count, g[1], p[1])
        count += 1


def cycle_circuits(cycle: CollisionCycle) -> list[BranchCircuits]:
    """The measured circuits of every branch of rho_0's mixture (logical qubits, see :data:`ROLES`).

    Classical registers (Qiskit count keys list them last first, separated by spaces):
    ``sys`` (A, B at the end), ``pre_a``, ``post_a``, ``pre_b``, ``post_b`` (one bit per collision).
    """
    prep = preparation_of(cycle.correlation(), "mixture")
    out = []
    for k, branch in enumerate(prep.branches):
        from qiskit.quantum_info import Statevector

        state = swap_vector(Statevector(branch.circuit).data)
        qr = QuantumRegister(4, "q")
        regs = {"sys": ClassicalRegister(2, "sys")}
        for name in _REGISTERS[1:]:
            regs[name] = ClassicalRegister(cycle.collisions, name)
        qc = QuantumCircuit(qr, *regs.values(), name=f"collision_cycle_branch{k}")
        qc.compose(branch.circuit, [0, 1], inplace=True)
        _append_schedule(qc, regs, cycle, 0)
        qc.measure([0, 1], regs["sys"])
        start = QuantumCircuit(QuantumRegister(4, "q"), ClassicalRegister(2, "sys"), name=f"start_branch{k}")
        start.compose(branch.circuit, [0, 1], inplace=True)
        start.measure([0, 1], start.cregs[0])
        out.append(BranchCircuits(branch.weight, state, qc, start))
    return out


def repeated_cycle_circuit(cycle: CollisionCycle, cycles: int) -> QuantumCircuit:
    """``cycles`` pump cycles in one dynamic circuit on the line (logical qubits as :data:`ROLES`).

    Each cycle resets A, B and a_B, prepares rho_0 with the one-ancilla purification of
    :func:`~qpump.quantum.preparation.preparation_of` on (A, B, a_B) (a_B is coupled to B, as the
    preparation needs) and resets a_B, which leaves A, B in rho_0 exactly; then the cycle of
    :func:`cycle_circuits` and the measurement of A and B. The registers are those of a single cycle,
    ``cycles`` times as wide: ``sys`` bits 2c, 2c + 1 are A, B after cycle c, the collision records of
    cycle c are bits c * collisions ... (c + 1) * collisions - 1. Every cycle starts from rho_0 again,
    so without noise each is :func:`predict` of one cycle; on a device the cycles show what repeated
    mid-circuit resets and re-preparation cost.
    """
    cycles = check.positive_int("cycles", cycles, 1000)
    prepare = preparation_of(cycle.correlation(), "ancilla").branches[0].circuit
    n = cycle.collisions
    qr = QuantumRegister(4, "q")
    regs = {"sys": ClassicalRegister(2 * cycles, "sys")}
    for name in _REGISTERS[1:]:
        regs[name] = ClassicalRegister(n * cycles, name)
    qc = QuantumCircuit(qr, *regs.values(), name=f"collision_cycles_{cycles}")
    for c in range(cycles):
        if c > 0:
            qc.reset([0, 1, 3])
        qc.compose(prepare, [0, 1, 3], inplace=True)
        qc.reset(3)  # discards the purification: A, B are left in rho_0
        _append_schedule(qc, regs, cycle, c * n)
        qc.measure([0, 1], [regs["sys"][2 * c], regs["sys"][2 * c + 1]])
    return qc


def per_cycle_heat(counts: dict, collisions: int, cycles: int,
                   maps: Sequence[tuple[float, float]] | None = None) -> list[tuple[Estimate, Estimate]]:
    """(Q_A, Q_B) of every cycle of :func:`repeated_cycle_circuit` from its counts, with standard
    errors; ``collisions`` per bath and cycle; ``maps`` per logical qubit (offset, scale) undo the
    readout error per bit (default none)."""
    maps = list(maps) if maps is not None else [(0.0, 1.0)] * 4
    n = collisions

    def bit(bits: str, i: int, role: int) -> float:
        return _mapped_bit(bits, i, maps[role])

    rows, mult = [], []
    for key, shots in counts.items():
        regs = _registers(key, _REGISTERS)
        values = []
        for c in range(cycles):
            for pre, post, role in (("pre_a", "post_a", 2), ("pre_b", "post_b", 3)):
                values.append(sum(bit(regs[pre], c * n + i, role) - bit(regs[post], c * n + i, role)
                                  for i in range(n)))
        rows.append(values)
        mult.append(shots)
    mean, var = _mean_var(np.array(rows), np.array(mult, dtype=float))
    return [(Estimate(float(mean[2 * c]), math.sqrt(var[2 * c])),
             Estimate(float(mean[2 * c + 1]), math.sqrt(var[2 * c + 1]))) for c in range(cycles)]


# ---------------------------------------------------------------------------------------------
# Device: the line layout, costs, ISA circuits
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineLayout:
    """Physical qubits of the line a_A - A - B - a_B."""

    A: int
    B: int
    a_A: int
    a_B: int

    @property
    def physical(self) -> list[int]:
        """``initial_layout`` of the logical qubits (A, B, a_A, a_B)."""
        return [self.A, self.B, self.a_A, self.a_B]

    def as_dict(self) -> dict[str, int]:
        return {"A": self.A, "B": self.B, "a_A": self.a_A, "a_B": self.a_B}

    def for_width(self, num_qubits: int) -> list[int]:
        """``initial_layout`` of a circuit on the first ``num_qubits`` logical qubits."""
        return self.physical[:num_qubits]


def choose_line_layout(backend) -> LineLayout:
    """The connected path a_A - A - B - a_B of least summed error: the three two-qubit gates' errors and
    the readout errors of all four qubits (each ancilla is read twice per collision)."""
    edges = _edge_errors(backend)
    neighbours = neighbours_of(backend)
    readout = {q: _readout_error(backend, q) for q in neighbours}
    best, best_cost = None, math.inf
    for (p, q), error_ab in sorted(edges.items()):
        for a, b in ((p, q), (q, p)):
            for aa, error_a in sorted(neighbours[a].items()):
                if aa == b:
                    continue
                for ab, error_b in sorted(neighbours[b].items()):
                    if ab in (a, aa):
                        continue
                    cost = error_ab + error_a + error_b + readout[a] + readout[b] + readout[aa] + readout[ab]
                    if cost < best_cost:
                        best, best_cost = LineLayout(a, b, aa, ab), cost
    if best is None:
        raise InvalidParameterError(f"backend {backend.name!r} has no line of four connected qubits "
                                    "a_A - A - B - a_B")
    return best


def measurement_costs(backend, layout: LineLayout, cycle: CollisionCycle | None = None) -> dict:
    """What the mid-circuit measurements and resets cost on ``backend`` (from its Target).

    Returns per role the measurement duration (s) and assignment error, the reset duration (s), T1 and
    T2 (s); with ``cycle``, the time the ancillas' measurements and resets take per circuit (serial per
    ancilla, the two ancillas in parallel) and exp(-t / T1) of A and B over that time, the idle decay
    that Aer's (unscheduled) noise model leaves out.
    """
    target = backend.target
    roles = {}
    for role, q in layout.as_dict().items():
        meas = target["measure"].get((q,)) if "measure" in target else None
        reset = target["reset"].get((q,)) if "reset" in target else None
        props = target.qubit_properties[q] if target.qubit_properties else None
        roles[role] = {
            "qubit": q,
            "measure_duration": getattr(meas, "duration", None),
            "measure_error": getattr(meas, "error", None),
            "reset_duration": getattr(reset, "duration", None),
            "T1": getattr(props, "t1", None),
            "T2": getattr(props, "t2", None),
        }
    out: dict = {"qubits": roles}
    if cycle is not None:
        per_ancilla = []
        for role in ("a_A", "a_B"):
            r = roles[role]
            per_ancilla.append(2 * cycle.collisions * (r["measure_duration"] or 0.0)
                               + (cycle.collisions - 1) * (r["reset_duration"] or 0.0))
        t = max(per_ancilla)
        out["measurement_time"] = t
        decay: dict[str, float | None] = {}
        for role in ("A", "B"):
            t1 = roles[role]["T1"]
            decay[role] = math.exp(-t / t1) if t1 else None
        out["idle_decay"] = decay
    return out


# ---------------------------------------------------------------------------------------------
# Density-matrix prediction of the circuits themselves (Aer, optionally with device noise)
# ---------------------------------------------------------------------------------------------

def _dephasing():
    from qiskit.quantum_info import Kraus

    return Kraus([np.diag([1.0, 0.0]), np.diag([0.0, 1.0])]).to_instruction()


def _density_matrix_version(qc: QuantumCircuit) -> QuantumCircuit:
    """``qc`` with every measurement replaced by what it does without feed-forward (Z dephasing) and the
    probabilities it would sample saved under the label REGISTER_INDEX (Aer-only)."""
    from qiskit_aer.library import SaveProbabilities

    out = QuantumCircuit(*qc.qregs, name=qc.name)
    dephase = _dephasing()
    for inst in qc.data:
        if inst.operation.name != "measure":
            out.append(inst.operation, inst.qubits, inst.clbits)
            continue
        loc = qc.find_bit(inst.clbits[0])
        reg, index = loc.registers[0]
        label = f"{reg.name}_{index}"
        if reg.name.startswith("pre"):
            out.append(dephase, inst.qubits)  # the Gibbs mixture is what the collision sees
            out.append(SaveProbabilities(1, label=label), inst.qubits)
        else:
            out.append(SaveProbabilities(1, label=label), inst.qubits)
            out.append(dephase, inst.qubits)
    return out


def _ancilla_factor(backend, layout: LineLayout | None) -> tuple[float, float]:
    """1 - e_01 - e_10 of the two ancillas' readout (what it multiplies the expected heat by)."""
    if backend is None or layout is None:
        return 1.0, 1.0
    out = []
    for q in (layout.a_A, layout.a_B):
        m = readout_assignment(backend, q)
        out.append(float(m[1, 1] - m[0, 1]))
    return out[0], out[1]


def predict_on_aer(cycle: CollisionCycle, backend=None, layout: LineLayout | None = None,
                   isa: Sequence[QuantumCircuit] | None = None, noise_model=None,
                   with_start: bool = False) -> dict:
    """Expected bath-side heat and energies of the circuits themselves, by Aer density matrices.

    Without ``backend``: the logical circuits, noise-free (equal to :func:`predict`). With ``backend``:
    the ISA circuits on ``layout`` (or the given ``isa``, one cycle circuit per branch) under
    ``noise_model_of(backend, layout qubits)``.

    Parameters
    ----------
    with_start : bool
        Also simulate the start circuits (``energy_start`` and ``residual``; not with ``isa``).

    Returns
    -------
    dict
        ``heat`` (Q_A, Q_B) with gate noise only, ``heat_raw`` with the ancillas' readout error as well
        (times 1 - e_01 - e_10), ``energy_end`` (<H_A>, <H_B>) with gate noise only; with ``with_start``
        also ``energy_start`` and ``residual`` = Delta E_sys - Q_A - Q_B - W (W from :func:`predict`):
        the energy the device's own noise puts into the qubits and ancillas (0 without noise).
    """
    from qiskit import transpile

    from ._aer import simulator

    if with_start and isa is not None:
        raise InvalidParameterError("with_start = True needs the start circuits: do not pass isa")
    branches = cycle_circuits(cycle)
    logical = [b.cycle for b in branches] + ([b.start for b in branches] if with_start else [])
    if backend is None:
        sim = simulator()
        circuits = transpile([_density_matrix_version(c) for c in logical], sim, optimization_level=0)
    else:
        layout = choose_line_layout(backend) if layout is None else layout
        if isa is None:
            isa = transpile_fixed(logical, backend, layout)
        if noise_model is None:
            noise_model = noise_model_of(backend, layout.physical)
        sim = simulator(noise_model)
        circuits = [_density_matrix_version(c) for c in isa]
    result = sim.run(circuits, shots=1).result()
    if not result.success:
        raise RuntimeError(f"Aer run failed: {result.status}")

    def excited(data: dict, label: str) -> float:
        return float(np.asarray(data[label])[1])

    heat, energy, start = np.zeros(2), np.zeros(2), np.zeros(2)
    for k, branch in enumerate(branches):
        data = result.data(k)
        for j, suffix in enumerate("ab"):
            pre = sum(excited(data, f"pre_{suffix}_{i}") for i in range(cycle.collisions))
            post = sum(excited(data, f"post_{suffix}_{i}") for i in range(cycle.collisions))
            heat[j] += branch.weight * (pre - post)
            energy[j] += branch.weight * (excited(data, f"sys_{j}") - 0.5)
            if with_start:
                start[j] += branch.weight * (excited(result.data(len(branches) + k), f"sys_{j}") - 0.5)
    factor = np.array(_ancilla_factor(backend, layout))
    out = {"heat": heat, "heat_raw": heat * factor, "energy_end": energy}
    if with_start:
        out["energy_start"] = start
        out["residual"] = float((energy - start).sum() - heat.sum() - predict(cycle).work)
    return out


# ---------------------------------------------------------------------------------------------
# Sampled runs and their estimators
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampledCycle:
    """Bath-side estimates of one sampled cycle (branches combined with their weights).

    Attributes
    ----------
    heat_a, heat_b : Estimate
        Q_A, Q_B from the ancillas' bits.
    energy_start, energy_end : Estimate
        <H_A + H_B> from the start circuits and at the end of the cycle circuits.
    delta_energy_system : Estimate
        energy_end - energy_start.
    first_law_residual : Estimate
        Delta E_sys - Q_A - Q_B - W with W the predicted work (not measurable from Z bits); its error
        accounts for the correlation of the bits within a shot.
    work : float
        The work W used (from :func:`predict`).
    shots : list of (int, int)
        Shots of (cycle, start) circuit per branch.
    layout : LineLayout or None
    mitigated : bool
    counts : list of (dict, dict)
        Counts of (cycle, start) per branch.
    """

    heat_a: Estimate
    heat_b: Estimate
    energy_start: Estimate
    energy_end: Estimate
    delta_energy_system: Estimate
    first_law_residual: Estimate
    work: float
    shots: list[tuple[int, int]]
    layout: LineLayout | None
    mitigated: bool
    counts: list[tuple[dict, dict]]


def _bit_maps(backend, qubits: Iterable[int] | None, mitigate: bool) -> list[tuple[float, float]]:
    """Per logical qubit, (offset, scale) such that (bit - offset)/scale estimates the true bit."""
    physical: list[int | None] = list(qubits) if qubits is not None else [None] * 4
    out = []
    for q in physical:
        if not mitigate or backend is None or q is None:
            out.append((0.0, 1.0))
            continue
        m = readout_assignment(backend, q)
        out.append((float(m[0, 1]), float(m[1, 1] - m[0, 1])))
    return out


def _mapped_bit(bits: str, i: int, offset_scale: tuple[float, float]) -> float:
    """Bit i (from the right) of a register, with the readout error undone: (bit - offset) / scale."""
    offset, scale = offset_scale
    return (float(bits[-1 - i]) - offset) / scale


def _registers(key: str, names: Sequence[str]) -> dict[str, str]:
    parts = key.split()
    return dict(zip(reversed(names), parts, strict=True))


def _per_shot(counts: dict, collisions: int, maps: list[tuple[float, float]], cycle: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """(values, multiplicities) per distinct key: columns qA, qB, e_sys (and s = e_sys - qA - qB)."""
    def bit(s: str, i: int, role: int) -> float:
        return _mapped_bit(s, i, maps[role])

    rows, mult = [], []
    names = _REGISTERS if cycle else ("sys",)
    for key, n in counts.items():
        regs = _registers(key, names)
        e_sys = bit(regs["sys"], 0, 0) + bit(regs["sys"], 1, 1) - 1.0
        if cycle:
            qa = sum(bit(regs["pre_a"], i, 2) - bit(regs["post_a"], i, 2) for i in range(collisions))
            qb = sum(bit(regs["pre_b"], i, 3) - bit(regs["post_b"], i, 3) for i in range(collisions))
        else:
            qa = qb = 0.0
        rows.append((qa, qb, e_sys, e_sys - qa - qb))
        mult.append(n)
    return np.array(rows), np.array(mult, dtype=float)


def _mean_var(values: np.ndarray, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = mult.sum()
    mean = mult @ values / n
    var = mult @ (values - mean) ** 2 / max(n - 1.0, 1.0)
    return mean, var / n  # variance of the mean


def run_sampled(cycle: CollisionCycle, shots: int, *, backend=None, layout: LineLayout | None = None,
                start_shots: int | None = None, seed: int = 1, mitigate: bool = False,
                noise: bool = True) -> SampledCycle:
    """Run the cycle's circuits on Aer with shots and estimate the bath-side heat with error bars.

    Parameters
    ----------
    cycle : CollisionCycle
    shots : int
        Shots of the cycle circuits, split over the branches by weight.
    backend : BackendV2, optional
        A (fake) device: the circuits are transpiled onto ``layout`` (default
        :func:`choose_line_layout`) and simulated with ``noise_model_of(backend, layout qubits)``
        (unless ``noise=False``). Without it: the logical circuits, noise-free.
    start_shots : int, optional
        Shots of the start circuits (default ``shots``).
    seed : int
        Aer's seed (each circuit k gets seed + k).
    mitigate : bool
        Undo the readout assignment error per bit with the backend's calibration.
    """
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    shots = check.positive_int("shots", shots)
    start_shots = shots if start_shots is None else check.positive_int("start_shots", start_shots)
    branches = cycle_circuits(cycle)
    circuits = [c for b in branches for c in (b.cycle, b.start)]
    if backend is not None:
        layout = choose_line_layout(backend) if layout is None else layout
        circuits = transpile_fixed(circuits, backend, layout)
        sim = AerSimulator(noise_model=noise_model_of(backend, layout.physical) if noise else None)
    else:
        sim = AerSimulator()
        circuits = transpile(circuits, sim, optimization_level=0)
    maps = _bit_maps(backend, layout.physical if layout is not None else None, mitigate)
    plan = [(max(1, round(b.weight * shots)), max(1, round(b.weight * start_shots))) for b in branches]
    counts = []
    for k, qc in enumerate(circuits):
        n = plan[k // 2][k % 2]
        res = sim.run(qc, shots=n, seed_simulator=seed + k).result()
        counts.append(res.get_counts(0))
    mean_c, var_c, mean_s, var_s = np.zeros(4), np.zeros(4), 0.0, 0.0
    for k, b in enumerate(branches):
        m, v = _mean_var(*_per_shot(counts[2 * k], cycle.collisions, maps, True))
        ms, vs = _mean_var(*_per_shot(counts[2 * k + 1], cycle.collisions, maps, False))
        mean_c += b.weight * m
        var_c += b.weight**2 * v
        mean_s += b.weight * ms[2]
        var_s += b.weight**2 * vs[2]
    work = predict(cycle).work

    def est(value: float, var: float) -> Estimate:
        return Estimate(float(value), float(math.sqrt(max(var, 0.0))))

    return SampledCycle(
        heat_a=est(mean_c[0], var_c[0]), heat_b=est(mean_c[1], var_c[1]),
        energy_start=est(mean_s, var_s), energy_end=est(mean_c[2], var_c[2]),
        delta_energy_system=est(mean_c[2] - mean_s, var_c[2] + var_s),
        first_law_residual=est(mean_c[3] - mean_s - work, var_c[3] + var_s), work=work,
        shots=plan, layout=layout, mitigated=mitigate,
        counts=[(counts[2 * k], counts[2 * k + 1]) for k in range(len(branches))])


# ---------------------------------------------------------------------------------------------
# Planner
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanRow:
    """One grid point of :func:`plan` (``nan`` where a row over budget was not simulated)."""

    n_c: int
    n_r: int
    g: float
    two_qubit_gates: int
    mid_circuit_measurements: int
    heat_b_ideal: float
    heat_b_noisy: float
    sigma: float
    significance: float
    within_budget: bool


@dataclass(frozen=True)
class Plan:
    """The chosen cycle and the table it was chosen from.

    Attributes
    ----------
    cycle : CollisionCycle
        The chosen parameters (largest predicted significance within budget; ties: fewer gates).
    row : PlanRow
        Its row.
    table : list of PlanRow
    layout : LineLayout
    shots : int
    costs : dict
        :func:`measurement_costs` of the chosen cycle.
    """

    cycle: CollisionCycle
    row: PlanRow
    table: list[PlanRow]
    layout: LineLayout
    shots: int
    costs: dict

    def format_table(self) -> str:
        """The table as aligned text (the chosen row marked with *)."""
        head = (f"{'':1} {'n_c':>3} {'n_r':>3} {'g/pi':>6} {'2q':>4} {'meas':>4} {'Q_B ideal':>10} "
                f"{'Q_B noisy':>10} {'sigma':>8} {'Q_B/sigma':>9}")
        lines = [head]
        for r in self.table:
            mark = "*" if r == self.row else ("" if r.within_budget else "-")
            lines.append(f"{mark:1} {r.n_c:3d} {r.n_r:3d} {r.g / math.pi:6.3f} {r.two_qubit_gates:4d} "
                         f"{r.mid_circuit_measurements:4d} {r.heat_b_ideal:10.5f} {r.heat_b_noisy:10.5f} "
                         f"{r.sigma:8.5f} {r.significance:9.2f}")
        return "\n".join(lines)


DEFAULT_N_C = (0, 1, 2)
DEFAULT_N_R = (1, 2)
DEFAULT_G = (math.pi / 8, math.pi / 4, 3 * math.pi / 8, math.pi / 2)


def _sigma(cycle: CollisionCycle, branches: Sequence[BranchCircuits], readout: np.ndarray | None,
           shots: int) -> float:
    """Standard error of the bath-side Q_B for ``shots`` split by weight (exact per-shot variance of
    each branch with ideal gates and the ancilla's readout error)."""
    var = 0.0
    for b in branches:
        state = np.outer(b.state, b.state.conj())
        _, v = _moments(heat_distribution(cycle, state, 1, readout))
        var += b.weight**2 * v / max(1, round(b.weight * shots))
    return math.sqrt(var)


def plan(backend, max_two_qubit_gates: int, max_mid_circuit_measurements: int, shots: int, *,
         pump: HeatPump | None = None, n_c_values: Sequence[int] = DEFAULT_N_C,
         n_r_values: Sequence[int] = DEFAULT_N_R, g_values: Sequence[float] = DEFAULT_G,
         layout: LineLayout | None = None) -> Plan:
    """Choose (n_c, n_r, g) maximising the predicted significance Q_B / sigma(Q_B) on ``backend``.

    For each grid point within the budgets the branches' cycle circuits are transpiled onto the line
    layout, and the device-noise prediction of Q_B (:func:`predict_on_aer`, with the ancilla's readout
    error) is divided by the standard error for ``shots`` (:func:`heat_distribution` with the readout
    error). The two-qubit gate count is the largest of the branches' ISA circuits; the measurement
    count excludes the final readout of A and B.

    Parameters
    ----------
    backend : BackendV2
        The (fake) device.
    max_two_qubit_gates, max_mid_circuit_measurements : int
        Budgets per circuit (>= 1 and >= 4: one collision per bath needs four measurements).
    shots : int
        Shots of the cycle circuits (split over the branches).
    pump : HeatPump, optional
        The pump's parameters (default ``HeatPump()``).
    n_c_values, n_r_values, g_values : sequences
        The grid. Grid points with n_c + n_r = 0 are skipped.
    layout : LineLayout, optional
        Default :func:`choose_line_layout`.
    """
    check.positive_int("max_two_qubit_gates", max_two_qubit_gates)
    if check.non_negative_int("max_mid_circuit_measurements", max_mid_circuit_measurements) < 4:
        raise InvalidParameterError(f"max_mid_circuit_measurements = {max_mid_circuit_measurements} is "
                                    "outside the allowed range [4, inf): one collision per bath needs four")
    shots = check.positive_int("shots", shots)
    if backend is None:
        raise InvalidParameterError("backend = None: the planner needs a device (e.g. a fake backend)")
    pump = HeatPump() if pump is None else pump
    layout = choose_line_layout(backend) if layout is None else layout
    noise_model = noise_model_of(backend, layout.physical)
    readout_b = readout_assignment(backend, layout.a_B)
    cycles = []
    for n_c in n_c_values:
        for n_r in n_r_values:
            if n_c + n_r == 0:
                continue
            for g in g_values:
                cycles.append(CollisionCycle(pump, n_c, n_r, g))
    if not cycles:
        raise InvalidParameterError("the grid (n_c_values, n_r_values, g_values) has no point with "
                                    "n_c + n_r >= 1")
    all_branches = [cycle_circuits(c) for c in cycles]
    flat = [b.cycle for bs in all_branches for b in bs]
    isa_flat = transpile_fixed(flat, backend, layout)
    rows, k = [], 0
    for cycle, branches in zip(cycles, all_branches, strict=True):
        isa = isa_flat[k:k + len(branches)]
        k += len(branches)
        gates = max(two_qubit_gate_count(c) for c in isa)
        within = (gates <= max_two_qubit_gates
                  and cycle.mid_circuit_measurements <= max_mid_circuit_measurements)
        ideal = float(predict(cycle).heat[1])
        if within:
            aer = predict_on_aer(cycle, backend, layout, isa=isa, noise_model=noise_model)
            noisy = float(aer["heat_raw"][1])
            sigma = _sigma(cycle, branches, readout_b, shots)
            significance = noisy / sigma if sigma > 0 else 0.0
        else:
            noisy = sigma = significance = math.nan
        rows.append(PlanRow(cycle.n_c, cycle.n_r, float(cycle.strengths[0]), gates,
                            cycle.mid_circuit_measurements, ideal, noisy, sigma, significance, within))
    candidates = [(r, c) for r, c in zip(rows, cycles, strict=True) if r.within_budget]
    if not candidates:
        raise InvalidParameterError(
            f"no grid point fits max_two_qubit_gates = {max_two_qubit_gates} and "
            f"max_mid_circuit_measurements = {max_mid_circuit_measurements} (the smallest needs "
            f"{min(r.two_qubit_gates for r in rows)} two-qubit gates and "
            f"{min(r.mid_circuit_measurements for r in rows)} measurements)")
    row, cycle = max(candidates, key=lambda rc: (round(rc[0].significance, 9), -rc[0].two_qubit_gates,
                                                 -rc[0].mid_circuit_measurements))
    return Plan(cycle=cycle, row=row, table=rows, layout=layout, shots=shots,
                costs=measurement_costs(backend, layout, cycle))
