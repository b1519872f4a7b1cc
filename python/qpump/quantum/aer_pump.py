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

The pump protocol is :meth:`qpump.pump.HeatPump.run` itself (add chi to the relaxed state, contact for
tau, relax for tau_relax, with its checks) driving :class:`AerBackend`; :func:`run_aer_pump` returns
its :class:`~qpump.pump.PumpResult`, one output per Strang step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from qiskit import QuantumCircuit

from .. import _validate as check
from ..closed import pair_hamiltonian
from ..errors import InvalidParameterError
from ..heom import Ramp
from ..lindblad import LocalBath, strang_split_run
from ..pump import HeatPump, PumpResult, Segment, refuse_drive
from ..states import H_A, H_B, product_state
from ._aer import add_save_density_matrix, run_saved, swap_order
from .contact import append_contact
from .noise import BathNoise, append_collision, gad_parameters
from .preparation import preparation_of

__all__ = [
    "TROTTER_BOUND",
    "trotter_error_estimate",
    "check_trotter_step",
    "StepSegment",
    "evolve_on_aer",
    "evolve_split_reference",
    "noise_free_states",
    "AerBackend",
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


def noise_free_states(prefix: QuantumCircuit | None, times: ArrayLike, omega_c: float, phi_v: float,
                      rho0: np.ndarray | None = None) -> np.ndarray:
    """rho(t) of the isolated pair on Aer: the preparation (or rho0) followed by the exact contact circuit.

    Returns an (n_t, 4, 4) array in qpump order, one Aer circuit per time.
    """
    from ._aer import density_matrices_of

    circuits = []
    for t in np.atleast_1d(np.asarray(times, dtype=float)):
        qc = _initial_circuit(rho0, prefix, prefix.num_qubits if prefix is not None else 2)
        append_contact(qc, float(t), omega_c, phi_v)
        circuits.append(qc)
    return np.array(density_matrices_of(circuits))


@dataclass(frozen=True)
class _Prepared:
    """The first injection when chi enters by the preparation circuit: the state is what ``prefix``
    prepares (``rho``, for the checks) rather than a density matrix that Aer sets."""

    rho: np.ndarray
    prefix: QuantumCircuit


class AerBackend:
    """The pump's :class:`~qpump.pump.PumpBackend` on Aer: every segment in Strang steps, one step
    per output interval, the baths as GAD noise channels or collision circuits (``reference=True``:
    the same steps with numpy superoperators, the matched-step reference).

    The heat is the energy each channel application adds, summed exactly, so there is no quadrature
    error; the currents reported beside it are its finite differences. The steady state (only for
    the normal reference) is that of the local master equation the channels emulate.
    """

    rtol = 1e-10
    truncation_hint = contact_hint = ""
    log: Callable[[str], None] | None = None
    supports_drive = False

    def __init__(self, pump: HeatPump, *, bath_model: str = "channel", injection: str = "exact",
                 reference: bool = False):
        check.one_of("bath_model", bath_model, BATH_MODELS)
        check.one_of("injection", injection, INJECTIONS)
        self.pump = pump
        self.baths = _baths(pump)
        self.bath_model = bath_model
        self.reference = reference
        # A circuit prepares only the fully relaxed rho^0: it can serve the first injection alone.
        self._prefix = (preparation_of(pump.correlation(), "ancilla").branches[0].circuit
                        if injection == "circuit" else None)

    def initial_state(self, initial: str) -> np.ndarray:
        # The local channels thermalize each qubit to its bare Gibbs state: both starts coincide.
        return product_state(self.pump.TA, self.pump.TB)

    @staticmethod
    def rho(state) -> np.ndarray:
        return state.rho if isinstance(state, _Prepared) else state

    def with_rho(self, state, rho: np.ndarray):
        if self._prefix is not None:
            prefix, self._prefix = self._prefix, None
            return _Prepared(rho, prefix)
        return rho

    def steady_state(self, hamiltonian: np.ndarray) -> np.ndarray:
        from ..lindblad import LindbladSolver

        solver = LindbladSolver(H_A + H_B, self.baths)
        solver.set_hamiltonian(hamiltonian)
        return solver.steady_state()

    def evolve(self, state, hamiltonian: np.ndarray, times: np.ndarray,
               progress: Callable[[float], None] | None = None,
               drive: Sequence[tuple[np.ndarray, Ramp]] = ()) -> Segment:
        refuse_drive(drive, "the Aer pump")
        omega_c, phi_v = _coupling_of(hamiltonian)
        n_steps, duration = len(times) - 1, float(times[-1])
        if self.reference:
            seg = evolve_split_reference(self.rho(state), omega_c, phi_v, self.baths, duration, n_steps)
        elif isinstance(state, _Prepared):
            seg = evolve_on_aer(None, omega_c, phi_v, self.baths, duration, n_steps,
                                bath_model=self.bath_model, prefix=state.prefix)
        else:
            seg = evolve_on_aer(state, omega_c, phi_v, self.baths, duration, n_steps,
                                bath_model=self.bath_model)
        current = -np.gradient(seg.heat, seg.times, axis=0) if n_steps else np.zeros_like(seg.heat)
        return Segment(seg.times, seg.rho, current, seg.heat, np.zeros_like(seg.heat), seg.rho[-1],
                       np.zeros(2))


def _coupling_of(hamiltonian: np.ndarray) -> tuple[float, float]:
    """(Omega, phi_V) of H = H_A + H_B + V_AB with V_AB = Omega (e^{i phi_V} |01><10| + h.c.)."""
    from ..states import coupling_potential

    v = np.asarray(hamiltonian) - (H_A + H_B)
    omega_c, phi_v = float(abs(v[1, 2])), float(np.angle(v[1, 2]))
    if not np.allclose(coupling_potential(omega_c, phi_v), v, atol=1e-12):
        raise InvalidParameterError("the Aer pump evolves H_A + H_B + V_AB only (V_AB of Eq. 7)")
    return omega_c, phi_v


def _baths(pump: HeatPump) -> list[LocalBath]:
    return [LocalBath(0, pump.kappa_a, pump.gamma, pump.TA), LocalBath(1, pump.kappa_b, pump.gamma, pump.TB)]


def _on_aer_grid(pump: HeatPump, dt: float, relax_steps: int) -> HeatPump:
    """``pump`` with the output grid of the Aer run: contact steps of at most ``dt``, the
    relaxation in ``relax_steps`` steps (exact for any step: V_AB is off there)."""
    dt = check.positive("dt", dt)
    relax_steps = check.non_negative_int("relax_steps", relax_steps)
    if pump.tau_relax > 0 and relax_steps == 0:
        raise InvalidParameterError("relax_steps = 0 cannot cover tau_relax > 0: use relax_steps >= 1")
    return replace(pump, dt_contact=dt, dt_relax=pump.tau_relax / relax_steps if relax_steps else 1.0)


def _run(pump: HeatPump | None, dt: float, relax_steps: int, backend_options: dict) -> PumpResult:
    on_grid = _on_aer_grid(pump if pump is not None else HeatPump(), dt, relax_steps)
    result = on_grid.run(normal_reference=False, backend=AerBackend(on_grid, **backend_options))
    result.params.update(dt=float(on_grid.contact_times()[1]), relax_steps=relax_steps)
    return result


def run_aer_pump(pump: HeatPump | None = None, dt: float = 0.05, relax_steps: int = 20, *,
                 bath_model: str = "channel", injection: str = "exact") -> PumpResult:
    """Run the pump protocol of ``pump`` (its solver setting aside) on Aer with bath noise.

    The protocol is :meth:`qpump.pump.HeatPump.run` with :class:`AerBackend`, so the result carries
    the same series, per-cycle table and checks (states, first law, second law) as HEOM's.

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
    PumpResult
        ``params`` adds ``dt`` (the contact's step), ``relax_steps``, ``bath_model`` and ``injection``.
    """
    result = _run(pump, dt, relax_steps, {"bath_model": bath_model, "injection": injection})
    result.params.update(bath_model=bath_model, injection=injection)
    return result


def run_split_reference_pump(pump: HeatPump | None = None, dt: float = 0.05,
                             relax_steps: int = 20) -> PumpResult:
    """The pump of :func:`run_aer_pump` with the same Strang steps by numpy (the matched-step reference)."""
    return _run(pump, dt, relax_steps, {"reference": True})
