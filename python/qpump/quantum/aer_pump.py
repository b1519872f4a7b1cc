"""The heat pump on qiskit-aer: contact circuits with bath noise, per-step observables, heat per cycle.

A segment of constant Hamiltonian H (V_AB on: the contact; off: the relaxation) of length ``duration``
is cut into n equal steps dt. Each step is the Strang splitting

    B(dt/2) . U(dt) . B(dt/2),   B(h) = GAD_A(h) (x) GAD_B(h),   U(dt) = exp(-i H dt) (exact circuit),

with the baths as the Aer noise model of :class:`qpump.quantum.noise.BathNoise` (or as collision
circuits). lindblad.strang_split_run computes the same product with numpy superoperators (the
"matched steps" reference); against the exact propagation of the master equation the splitting error is
second order, O((dt)^2) at a fixed time, and it vanishes with V_AB off, where the dissipators commute
with H_A + H_B. Heat drawn from bath K is the energy Tr(H (rho_after - rho_before)) that each
application of its channel adds, read off Aer density matrices saved around every channel.

The pump protocol is that of :class:`qpump.pump.HeatPump` (add chi to the relaxed state, contact for
tau, relax for tau_relax) with the same parameters; :func:`run_aer_pump` returns per-step energies,
heat, concurrence and mutual information, and Q_A, Q_B per cycle.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from qiskit import QuantumCircuit

from .. import _validate as check
from ..closed import pair_hamiltonian
from ..errors import InvalidParameterError, InvalidStateError
from ..info import concurrence, local_energies, mutual_information
from ..lindblad import LocalBath, strang_split_run
from ..pump import HeatPump
from ..states import H_A, H_B, product_state
from ._aer import add_save_density_matrix, run_saved, swap_order
from .contact import append_contact
from .noise import BathNoise, append_collision, gad_parameters

__all__ = [
    "TROTTER_BOUND",
    "trotter_error_estimate",
    "check_trotter_step",
    "StepSegment",
    "evolve_on_aer",
    "evolve_split_reference",
    "noise_free_states",
    "AerPumpCycle",
    "AerPumpResult",
    "run_aer_pump",
    "run_split_reference_pump",
]

TROTTER_BOUND = 0.1
"""Largest (gamma_down + gamma_up) dt and Omega dt accepted without a warning."""

BATH_MODELS = ("channel", "collision")
INJECTIONS = ("exact", "circuit")


def trotter_error_estimate(dt: float, omega_c: float, baths: Sequence[LocalBath], duration: float) -> float:
    """Order of magnitude of the Strang splitting error of the state after ``duration``.

    The leading error of one step is dt^3 times double commutators of the coupling generator
    (size Omega) and the dissipators (size Gamma = gamma_down + gamma_up), so after duration / dt steps
    the error is about duration dt^2 Omega Gamma (Omega + Gamma) / 12 (the dissipators commute with
    H_A + H_B, so only V_AB counts). The tests measure the actual error to be below this.
    """
    gamma = max((sum(b.rates) for b in baths), default=0.0)
    return duration * dt * dt * abs(omega_c) * gamma * (abs(omega_c) + gamma) / 12.0


def check_trotter_step(dt: float, omega_c: float, baths: Sequence[LocalBath], duration: float) -> None:
    """Warn (UserWarning) if Gamma dt or Omega dt exceeds :data:`TROTTER_BOUND`, quoting the implied error."""
    gamma = max((sum(b.rates) for b in baths), default=0.0)
    if gamma == 0.0 or omega_c == 0.0:
        return  # no splitting: the unitary and the channels are each exact
    if gamma * dt > TROTTER_BOUND or abs(omega_c) * dt > TROTTER_BOUND:
        warnings.warn(
            f"Trotter step dt = {dt:g} is large: Gamma dt = {gamma * dt:.3g} and Omega dt = "
            f"{abs(omega_c) * dt:.3g} (bound {TROTTER_BOUND:g}); the Strang splitting error after "
            f"t = {duration:g} is about {trotter_error_estimate(dt, omega_c, baths, duration):.2g} "
            "in the density matrix. Use more steps.",
            UserWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class StepSegment:
    """A constant-Hamiltonian stretch at the step boundaries k dt, k = 0..n.

    Attributes
    ----------
    times : (n+1,) array
    rho : (n+1, 4, 4) array
        Two-qubit state (qpump order).
    heat : (n+1, n_baths) array
        Cumulative heat drawn from each bath since the segment start.
    hamiltonian : (4, 4) array
        The system Hamiltonian of the segment.
    """

    times: np.ndarray
    rho: np.ndarray
    heat: np.ndarray
    hamiltonian: np.ndarray

    @property
    def energy(self) -> np.ndarray:
        """Tr(H rho) at every step."""
        return np.real(np.einsum("ij,tji->t", self.hamiltonian, self.rho))


def _steps(duration: float, n_steps: int) -> float:
    duration = check.non_negative("duration", duration)
    n_steps = check.non_negative_int("n_steps", n_steps)
    if n_steps == 0 and duration > 0:
        raise InvalidParameterError(f"n_steps = 0 cannot cover duration = {duration:g}: use n_steps >= 1")
    return duration / n_steps if n_steps else 0.0


def _initial_circuit(rho0: np.ndarray | None, prefix: QuantumCircuit | None, width: int) -> QuantumCircuit:
    from qiskit_aer.library import SetDensityMatrix

    qc = QuantumCircuit(width)
    if prefix is not None:
        qc.compose(prefix, range(prefix.num_qubits), inplace=True)
        return qc
    state = swap_order(np.asarray(rho0, dtype=complex))
    for _ in range(width - 2):  # fresh ancillas |0><0| above the system (Qiskit: kron(high, low))
        state = np.kron(np.diag([1.0, 0.0]), state)
    qc.append(SetDensityMatrix(state), range(width))
    return qc


def evolve_on_aer(
    rho0: np.ndarray | None,
    omega_c: float,
    phi_v: float,
    baths: Sequence[LocalBath],
    duration: float,
    n_steps: int,
    *,
    bath_model: str = "channel",
    prefix: QuantumCircuit | None = None,
) -> StepSegment:
    """Evolve two qubits on Aer for ``duration`` under H_A + H_B + V_AB and the baths, in Strang steps.

    Parameters
    ----------
    rho0 : (4, 4) array or None
        Initial state (qpump order), set with Aer's set_density_matrix; None when ``prefix`` prepares it.
    omega_c, phi_v : float
        V_AB (Omega = 0: uncoupled relaxation, no splitting error).
    baths : sequence of LocalBath
        Baths on qubit 0 (A) and/or 1 (B).
    duration : float
        Length of the segment (>= 0).
    n_steps : int
        Number of Strang steps (>= 1 unless duration is 0).
    bath_model : {"channel", "collision"}
        GAD channels through an Aer noise model, or collision circuits with a fresh ancilla and a purifier
        (two extra qubits shared by the baths, reset after each collision).
    prefix : QuantumCircuit, optional
        A measurement-free circuit preparing the initial state on qubits 0, 1 (its ancillas above).

    Returns
    -------
    StepSegment
    """
    if bath_model not in BATH_MODELS:
        raise InvalidParameterError(f"bath_model = {bath_model!r} must be one of {', '.join(BATH_MODELS)}")
    if (rho0 is None) == (prefix is None):
        raise InvalidParameterError("give exactly one of rho0 and prefix")
    dt = _steps(duration, n_steps)
    check_trotter_step(dt, omega_c, baths, duration)
    ham = pair_hamiltonian(omega_c, phi_v)
    base = prefix.num_qubits if prefix is not None else 2
    width = base + (2 if bath_model == "collision" else 0)
    qc = _initial_circuit(rho0, prefix, width)
    noise = BathNoise(baths) if bath_model == "channel" else None

    def bath_layer(step: int, stage: int) -> None:
        for j, bath in enumerate(baths):
            if noise is not None:
                noise.mark(qc, j, dt / 2)
            else:
                append_collision(qc, *gad_parameters(bath, dt / 2), system=bath.qubit,
                                 ancilla=base, purifier=base + 1)
            add_save_density_matrix(qc, (0, 1), f"s{step}_{stage}_{j}")

    add_save_density_matrix(qc, (0, 1), "start")
    for k in range(n_steps):
        bath_layer(k, 0)
        append_contact(qc, dt, omega_c, phi_v)
        add_save_density_matrix(qc, (0, 1), f"s{k}_u")
        bath_layer(k, 1)
    data = run_saved(qc, noise.noise_model if noise is not None else None)[0]

    def energy(label: str) -> float:
        return float(np.real(np.trace(ham @ swap_order(np.asarray(data[label])))))

    rho = np.empty((n_steps + 1, 4, 4), dtype=complex)
    heat = np.zeros((n_steps + 1, len(baths)))
    rho[0] = swap_order(np.asarray(data["start"]))
    last = len(baths) - 1
    for k in range(n_steps):
        before = [f"s{k - 1}_1_{last}" if k else "start", f"s{k}_u"]
        gained = np.zeros(len(baths))
        for stage in (0, 1):
            previous = energy(before[stage])
            for j in range(len(baths)):
                now = energy(f"s{k}_{stage}_{j}")
                gained[j] += now - previous
                previous = now
        heat[k + 1] = heat[k] + gained
        rho[k + 1] = swap_order(np.asarray(data[f"s{k}_1_{last}"]))
    return StepSegment(times=dt * np.arange(n_steps + 1), rho=rho, heat=heat, hamiltonian=ham)


def evolve_split_reference(rho0: np.ndarray, omega_c: float, phi_v: float, baths: Sequence[LocalBath],
                           duration: float, n_steps: int) -> StepSegment:
    """The same Strang steps as :func:`evolve_on_aer`, by numpy superoperators (lindblad.strang_split_run)."""
    dt = _steps(duration, n_steps)
    ham = pair_hamiltonian(omega_c, phi_v)
    if n_steps == 0:
        rho = np.asarray(rho0, dtype=complex)[None]
        return StepSegment(np.zeros(1), rho, np.zeros((1, len(baths))), ham)
    res = strang_split_run(rho0, ham, list(baths), dt, n_steps)
    return StepSegment(times=res.times, rho=res.rho, heat=res.heat, hamiltonian=ham)


def noise_free_states(prefix: QuantumCircuit | None, times: Sequence[float], omega_c: float, phi_v: float,
                      rho0: np.ndarray | None = None) -> np.ndarray:
    """rho(t) of the isolated pair on Aer: the preparation (or rho0) followed by the exact contact circuit.

    Returns an (n_t, 4, 4) array in qpump order, one Aer circuit per time.
    """
    from ._aer import density_matrices_of

    circuits = []
    for t in times:
        qc = _initial_circuit(rho0, prefix, prefix.num_qubits if prefix is not None else 2)
        append_contact(qc, float(t), omega_c, phi_v)
        circuits.append(qc)
    return np.array(density_matrices_of(circuits))


@dataclass(frozen=True)
class AerPumpCycle:
    """Per-cycle bookkeeping of the pump on Aer (heat drawn from each bath during the cycle)."""

    index: int
    Q_A: float
    Q_B: float
    W_on: float
    W_off: float
    I0: float
    first_law_residual: float


@dataclass
class AerPumpResult:
    """Per-step series of the pump on Aer and its per-cycle table.

    ``series`` holds arrays over ``t``: ``E_A``, ``E_B``, ``Q_A``, ``Q_B`` (cumulative heat drawn from each
    bath), ``concurrence``, ``mutual_information``, ``coupled`` and ``cycle``. ``rho`` is the state at every
    step (qpump order).
    """

    params: dict
    t: np.ndarray
    rho: np.ndarray
    series: dict[str, np.ndarray]
    cycles: list[AerPumpCycle]
    extra: dict = field(default_factory=dict)


SegmentEvolver = Callable[[np.ndarray, float, float, Sequence[LocalBath], float, int], StepSegment]


def _baths(pump: HeatPump) -> list[LocalBath]:
    return [LocalBath(0, pump.kappa_a, pump.gamma, pump.TA), LocalBath(1, pump.kappa_b, pump.gamma, pump.TB)]


def _pump(pump: HeatPump, dt: float, relax_steps: int, evolve: SegmentEvolver,
          first: Callable[[], StepSegment] | None = None) -> AerPumpResult:
    baths = _baths(pump)
    chi = pump.correlation().matrix
    v = pump.coupled_hamiltonian - (H_A + H_B)
    n_contact = max(1, math.ceil(pump.tau / check.positive("dt", dt) - 1e-9))
    relax_steps = check.non_negative_int("relax_steps", relax_steps)
    if pump.tau_relax > 0 and relax_steps == 0:
        raise InvalidParameterError("relax_steps = 0 cannot cover tau_relax > 0: use relax_steps >= 1")
    state = product_state(pump.TA, pump.TB)  # the steady state of the uncoupled local master equation
    times, rhos, heats, coupled, cycle_index, cycles = [], [], [], [], [], []
    clock, offset = 0.0, np.zeros(2)
    for index in range(pump.cycles):
        rho = state + chi
        min_eig = float(np.linalg.eigvalsh(rho)[0])
        if min_eig < -1e-12:
            raise InvalidStateError(
                f"cycle {index + 1}: the relaxed state plus chi is not a state (smallest eigenvalue "
                f"{min_eig:.3g}); tau_relax = {pump.tau_relax:g} is too short: lengthen tau_relax")
        if first is not None and index == 0:
            contact = first()
        else:
            contact = evolve(rho, pump.omega_c, pump.delta, baths, pump.tau, n_contact)
        relax = evolve(contact.rho[-1], 0.0, 0.0, baths, pump.tau_relax, relax_steps)
        for seg, t0, on in ((contact, clock, True), (relax, clock + pump.tau, False)):
            keep = slice(0, None) if on else slice(1, None)
            times.append(t0 + seg.times[keep])
            rhos.append(seg.rho[keep])
            heats.append(offset + seg.heat[keep])
            coupled.append(np.full(seg.times[keep].size, on))
            cycle_index.append(np.full(seg.times[keep].size, index + 1))
            offset = offset + seg.heat[-1]
        q = contact.heat[-1] + relax.heat[-1]
        w_on = float(np.real(np.trace(v @ contact.rho[0])))
        w_off = -float(np.real(np.trace(v @ contact.rho[-1])))
        free = H_A + H_B
        e_start = float(np.real(np.trace(free @ contact.rho[0])))
        e_end = float(np.real(np.trace(free @ relax.rho[-1])))
        cycles.append(AerPumpCycle(index=index + 1, Q_A=float(q[0]), Q_B=float(q[1]), W_on=w_on, W_off=w_off,
                                   I0=float(mutual_information(contact.rho[0])),
                                   first_law_residual=e_end - e_start - float(q.sum()) - (w_on + w_off)))
        state = relax.rho[-1]
        clock += pump.tau + pump.tau_relax
    rho = np.concatenate(rhos)
    heat = np.concatenate(heats)
    e_a, e_b = local_energies(rho)
    series = {
        "E_A": np.asarray(e_a), "E_B": np.asarray(e_b), "Q_A": heat[:, 0], "Q_B": heat[:, 1],
        "concurrence": np.atleast_1d(concurrence(rho)),
        "mutual_information": np.atleast_1d(mutual_information(rho)),
        "coupled": np.concatenate(coupled), "cycle": np.concatenate(cycle_index),
    }
    params = {**pump.params(), "dt": pump.tau / n_contact, "relax_steps": relax_steps}
    return AerPumpResult(params=params, t=np.concatenate(times), rho=rho, series=series, cycles=cycles)


def run_aer_pump(pump: HeatPump | None = None, dt: float = 0.05, relax_steps: int = 20, *,
                 bath_model: str = "channel", injection: str = "exact") -> AerPumpResult:
    """Run the pump protocol of ``pump`` (solver settings ignored) on Aer with bath noise.

    Parameters
    ----------
    pump : HeatPump, optional
        The protocol and its parameters (default: the paper's, ``HeatPump()``). Each cycle adds chi to
        the relaxed state, couples for tau, relaxes for tau_relax.
    dt : float
        Target Strang step of the contact; the contact uses ceil(tau/dt) equal steps.
    relax_steps : int
        Steps of the relaxation (exact for any step: V_AB is off there).
    bath_model : {"channel", "collision"}
        Baths as GAD noise channels or as collision circuits.
    injection : {"exact", "circuit"}
        How chi enters: set the relaxed state plus chi with set_density_matrix (exact, like
        qpump.pump), or run the ancilla preparation circuit of rho^0 in the first cycle (what hardware
        does; later cycles set the state, since a circuit can only prepare the fully relaxed one).

    Returns
    -------
    AerPumpResult
    """
    pump = pump if pump is not None else HeatPump()
    if injection not in INJECTIONS:
        raise InvalidParameterError(f"injection = {injection!r} must be one of {', '.join(INJECTIONS)}")

    def evolve(rho0, omega_c, phi_v, baths, duration, n):
        return evolve_on_aer(rho0, omega_c, phi_v, baths, duration, n, bath_model=bath_model)

    first = None
    if injection == "circuit":
        from .preparation import preparation_of

        prefix = preparation_of(pump.correlation(), "ancilla").branches[0].circuit
        baths = _baths(pump)
        n = max(1, math.ceil(pump.tau / dt - 1e-9))

        def first() -> StepSegment:
            return evolve_on_aer(None, pump.omega_c, pump.delta, baths, pump.tau, n, bath_model=bath_model,
                                 prefix=prefix)

    result = _pump(pump, dt, relax_steps, evolve, first)
    result.params.update(bath_model=bath_model, injection=injection)
    return result


def run_split_reference_pump(pump: HeatPump | None = None, dt: float = 0.05,
                             relax_steps: int = 20) -> AerPumpResult:
    """The pump of :func:`run_aer_pump` with the same Strang steps by numpy (the matched-step reference)."""
    return _pump(pump if pump is not None else HeatPump(), dt, relax_steps, evolve_split_reference)
