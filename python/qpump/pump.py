"""The heat pump of Sec. V: cycle protocol, heat and entropy bookkeeping, efficiency.

One cycle (paper Fig. 3): (b) the correlation chi of Eq. 8 is added to the current system state,
(c) V_AB is switched on for ``tau``, (d)+(a) it is switched off and the qubits rethermalize for
``tau_relax``. The paper switches V_AB suddenly; ``ramp="linear"`` or ``"sin2"`` switches it
smoothly, f(t) V_AB rising over ``ramp_time`` from the contact's start and falling over
``ramp_time`` from ``tau`` on (same pulse area, Int f dt = tau; the contact lasts
``tau + ramp_time``), with the switching work W = Int f'(t) <V_AB> dt of each ramp.

Conventions (docs/conventions.md): Q_K is the heat drawn FROM bath K (Q_A < 0 and
Q_B > 0 when the pump works); Sigma = Delta S_AB - Q_A/T_A - Q_B/T_B >= 0 (Eq. C4) and
Sigma_0 = Delta S_A + Delta S_B - Q_A/T_A - Q_B/T_B = Sigma + Delta I_AB (Eq. 14), both counted
from the start of each cycle, where the fuel is injected. The efficiency of Eq. 18 is
Q_B / (T_A I_0) against the Carnot bound T_B / (T_A - T_B).

One protocol, :meth:`HeatPump.run`, drives every backend (:class:`PumpBackend`): the exact HEOM
(``solver="heom"``, the paper's method), the weak-coupling local master equation
(``solver="lindblad"``, fast), and Aer's circuits with the baths as noise
(:class:`qpump.quantum.aer_pump.AerBackend`, through :func:`qpump.quantum.run_aer_pump`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from . import _validate as check
from . import invariants
from .errors import (
    HierarchyTooLargeError,
    InvalidParameterError,
    InvalidStateError,
    InvariantViolationError,
    NotConvergedError,
    TruncationWarning,
)
from .heom import Ramp
from .info import concurrence, local_energies, mutual_information, partial_trace
from .info import von_neumann_entropy as entropy
from .states import (
    H_A,
    H_B,
    IDENTITY2,
    SIGMA_X,
    correlation_matrix,
    coupling_potential,
    product_state,
)

__all__ = ["HeatPump", "PumpResult", "CycleRecord", "Segment", "PumpBackend", "HEOMBackend",
           "LindbladBackend", "converge_pump"]

Q_A = np.kron(SIGMA_X, IDENTITY2)
Q_B = np.kron(IDENTITY2, SIGMA_X)
H_FREE = H_A + H_B

EXPANSIONS = ("matsubara", "pade")
#: The value of ``depth`` and ``n_exp`` that asks for the automatic truncation.
AUTO = "auto"
RAMPS = ("none", "linear", "sin2")
#: Fewest output steps over a ramp (its work is Simpson's rule on them).
RAMP_STEPS = 40
INITIALS = ("equilibrated", "product")
SOLVERS = ("heom", "lindblad")


@dataclass(frozen=True)
class Segment:
    """The trajectory of one constant-Hamiltonian stretch, times relative to its start."""

    times: np.ndarray
    rho: np.ndarray
    heat_current: np.ndarray  # (n_t, 2): energy flow INTO baths A, B
    heat: np.ndarray  # (n_t, 2): cumulative heat drawn FROM baths A, B since the segment start
    interaction_energy: np.ndarray  # (n_t, 2)
    final_state: Any
    heat_error: np.ndarray  # (2,): estimated error of ``heat[-1]`` (0 where it is exact)
    coupling: np.ndarray | None = None  # (n_t,): f(t) of f(t) V_AB under a ramp (None: constant)


class PumpBackend(Protocol):
    """What :meth:`HeatPump.run` needs of a way to evolve the qubits with their baths.

    A backend's state is whatever it evolves (a density matrix, or all the ADOs of a hierarchy);
    ``rho`` reads the qubits' state from it and ``with_rho`` replaces that (the injection of chi).

    Attributes
    ----------
    rtol : float
        Relative accuracy of the heat it reports (enters the first-law tolerance).
    truncation_hint, contact_hint : str
        The likely cause to name when a check fails after a relaxation or after a contact.
    log : callable or None
        Where phase lines go (None: silent).
    """

    rtol: float
    truncation_hint: str
    contact_hint: str
    log: Callable[[str], None] | None
    supports_drive: bool

    def initial_state(self, initial: str) -> Any:
        """The state the first cycle starts from (``initial`` is one of :data:`INITIALS`)."""
        ...

    def rho(self, state: Any) -> np.ndarray:
        """The two-qubit density matrix of ``state``."""
        ...

    def with_rho(self, state: Any, rho: np.ndarray) -> Any:
        """``state`` with its two-qubit density matrix replaced by ``rho``."""
        ...

    def steady_state(self, hamiltonian: np.ndarray) -> Any:
        """The steady state under ``hamiltonian`` with both baths."""
        ...

    def evolve(self, state: Any, hamiltonian: np.ndarray, times: np.ndarray,
               progress: Callable[[float], None] | None = None,
               drive: Sequence[tuple[np.ndarray, Ramp]] = ()) -> Segment:
        """Evolve ``state`` under ``hamiltonian`` (plus the ramped ``drive`` terms f(t) V, which
        only a backend with ``supports_drive`` accepts) and the baths; output at ``times`` (from 0)."""
        ...


class LindbladBackend:
    """The weak-coupling local master equation (:mod:`qpump.lindblad`)."""

    #: The heat comes from exact matrix exponentials (no quadrature, no step control).
    rtol = 1e-12
    truncation_hint = contact_hint = ""
    log: Callable[[str], None] | None = None
    supports_drive = False

    def __init__(self, pump: HeatPump):
        from .lindblad import LindbladSolver, LocalBath

        self.solver = LindbladSolver(H_FREE, [LocalBath(0, pump.kappa_a, pump.gamma, pump.TA),
                                              LocalBath(1, pump.kappa_b, pump.gamma, pump.TB)])

    def initial_state(self, initial: str) -> np.ndarray:
        # The local master equation thermalizes each qubit to its bare Gibbs state: the
        # "equilibrated" and "product" starts coincide.
        self.solver.set_hamiltonian(H_FREE)
        return self.solver.steady_state()

    @staticmethod
    def rho(state: np.ndarray) -> np.ndarray:
        return state

    @staticmethod
    def with_rho(state: np.ndarray, rho: np.ndarray) -> np.ndarray:
        return rho

    def steady_state(self, hamiltonian: np.ndarray) -> np.ndarray:
        self.solver.set_hamiltonian(hamiltonian)
        return self.solver.steady_state()

    def evolve(self, state: np.ndarray, hamiltonian: np.ndarray, times: np.ndarray,
               progress: Callable[[float], None] | None = None,
               drive: Sequence[tuple[np.ndarray, Ramp]] = ()) -> Segment:
        refuse_drive(drive, "the local master equation (solver='lindblad')")
        self.solver.set_hamiltonian(hamiltonian)
        res = self.solver.run(state, times)
        return Segment(times, res.rho, res.heat_current, res.heat,
                       np.zeros_like(res.heat_current), res.final_state, np.zeros(2))


#: Liouville dimension (ADOs x d^2) from which a steady-state solve takes long enough (about a
#: second and up) for the pump to say what it is doing.
ANNOUNCE_DIM = 5000


class HEOMBackend:
    """The exact hierarchical equations of motion (:mod:`qpump.heom`)."""

    supports_drive = True

    def __init__(self, pump: HeatPump, log: Callable[[str], None] | None = None):
        from .heom import DrudeLorentzBath, HEOMSolver

        self.TA, self.TB = pump.TA, pump.TB
        self.where = (f"TA = {pump.TA:g}, TB = {pump.TB:g}, kappa_a = {pump.kappa_a:g}, "
                      f"kappa_b = {pump.kappa_b:g}, gamma = {pump.gamma:g}, depth = {pump.depth}, "
                      f"n_exp = {pump.n_exp} ({pump.expansion})")
        depth, n_exp = pump.truncation
        baths = [
            DrudeLorentzBath(Q_A, pump.kappa_a, pump.gamma, pump.TA, n_exp=n_exp,
                             expansion=pump.expansion, terminator=pump.terminator),
            DrudeLorentzBath(Q_B, pump.kappa_b, pump.gamma, pump.TB, n_exp=n_exp,
                             expansion=pump.expansion, terminator=pump.terminator),
        ]
        # Before any run: an expansion that misses its bath's spectrum or detailed balance at the
        # pair's Bohr frequencies gives wrong numbers silently.
        from .convergence import check_model

        for line in check_model(pump.coupled_hamiltonian, baths).warnings:
            warnings.warn(line, TruncationWarning, stacklevel=3)
        try:
            self.solver = HEOMSolver(H_FREE, baths, depth=depth,
                                     memory_limit_bytes=pump.memory_limit_bytes)
        except InvalidParameterError as err:  # baths[0] is bath A, baths[1] bath B
            raise type(err)(f"the hierarchy of bath A (baths[0]) and bath B (baths[1]) at "
                            f"{self.where}: {err}") from None
        self.rtol = self.solver.rtol
        self.log = log if log is not None and self.solver.n_ados * 16 >= ANNOUNCE_DIM else None
        if self.log:
            self.log(f"HEOM: {self.solver.n_ados} ADOs (depth {pump.depth}, "
                     f"{sum(len(b.exponents) for b in baths)} exponents), Liouville dimension "
                     f"{self.solver.n_ados * 16}")
        self.truncation_hint = (f"the hierarchy (depth = {pump.depth}, n_exp = {pump.n_exp}) may be "
                                "too shallow for this coupling: raise depth or n_exp")
        # Adding chi to the system part of a state correlated with the baths need not give a
        # positive system-bath state; the reduced dynamics then leaves the state space.
        self.contact_hint = (f"{self.truncation_hint}; or chi added to the bath-dressed state is "
                             "not a physical system-bath state at these parameters (the first "
                             "cycle of --initial product starts from a product state instead)")

    def initial_state(self, initial: str):
        self.solver.set_hamiltonian(H_FREE)
        if initial == "equilibrated":
            return self._steady_state("the uncoupled hierarchy (the initial state)")
        return product_state(self.TA, self.TB)  # all other ADOs zero

    def _steady_state(self, what: str):
        if self.log:
            self.log(f"steady state of {what} ...")
        start = time.perf_counter()
        try:
            state = self.solver.steady_state()
        except InvalidParameterError as err:  # name the pump's parameters, not the solver's
            raise InvalidParameterError(f"steady state of {what} at {self.where}: {err}") from None
        except InvariantViolationError as err:
            raise InvariantViolationError(err.check, err.value, err.tolerance,
                                          f"{what} at {self.where}: {err.detail}") from None
        if self.log:
            info = self.solver.steady_state_info
            how = (f"GMRES, {info['iterations']} iterations" if info.get("method") == "gmres"
                   else "sparse LU")
            self.log(f"steady state of {what}: done in {time.perf_counter() - start:.1f} s "
                     f"({how}, residual {info.get('residual', math.nan):.1e})")
        return state

    @staticmethod
    def rho(state) -> np.ndarray:
        return state if isinstance(state, np.ndarray) else state.rho

    @staticmethod
    def with_rho(state, rho: np.ndarray):
        if isinstance(state, np.ndarray):
            return rho
        ados = state.ados.copy()
        ados[0] = rho
        return replace(state, ados=ados)

    def steady_state(self, hamiltonian: np.ndarray):
        self.solver.set_hamiltonian(hamiltonian)
        return self._steady_state("the coupled pair (the normal reference)")

    def evolve(self, state, hamiltonian: np.ndarray, times: np.ndarray,
               progress: Callable[[float], None] | None = None,
               drive: Sequence[tuple[np.ndarray, Ramp]] = ()) -> Segment:
        from scipy.integrate import cumulative_simpson

        self.solver.set_hamiltonian(hamiltonian)
        self.solver.set_drive(list(drive))
        res = self.solver.run(state, times, progress=progress or False)
        # Q_K(t) = -int j_K: Simpson's rule on the (fine) output grid; the first-law residual of
        # each cycle reports what this quadrature misses.
        heat = -cumulative_simpson(res.heat_current, x=times, axis=0, initial=0.0)
        return Segment(times, res.rho, res.heat_current, heat, res.interaction_energy,
                       res.final_state, invariants.simpson_error(times, res.heat_current))


@dataclass(frozen=True)
class CycleRecord:
    """Per-cycle bookkeeping (heat drawn from each bath during the cycle, switching work).

    ``cop_ratio`` is Q_B / (T_A I0) with I0 the mutual information of the state the cycle starts
    from; ``cop_ratio_bare`` uses instead the I_0 of the bare state of Eq. 10 (0.595453 at
    T_A = 2, T_B = 1), which differs when the baths dress the qubits.
    """

    index: int
    Q_A: float
    Q_B: float
    W_on: float
    W_off: float
    I0: float
    cop_ratio: float
    cop_ratio_bare: float
    carnot_bound: float | None
    first_law_residual: float
    min_eigenvalue_after_chi: float
    first_law_tolerance: float = 0.0


@dataclass
class PumpResult:
    """Time series and per-cycle table of a pump run.

    Time series (arrays over ``t``): ``Q_A``, ``Q_B`` (cumulative heat drawn from each bath),
    ``j_A``, ``j_B`` (currents into the baths), ``E_A``, ``E_B``, ``sed``, ``concurrence``,
    ``mutual_information``, ``delta_S_AB``, ``sigma``, ``sigma0`` (per cycle, from its start),
    ``coupling`` (f(t) of f(t) V_AB: 1 while coupled and 0 while not for a sudden switch, the ramp
    between), ``V`` (the coupling energy f(t) <V_AB>) and ``coupled`` (bool mask: the contact,
    ramps included); ``rho`` is the two-qubit
    state at every time, shape (n_t, 4, 4).
    """

    params: dict
    t: np.ndarray
    series: dict[str, np.ndarray]
    rho: np.ndarray
    cycles: list[CycleRecord]
    I0: float
    carnot_bound: float | None
    normal_heat_current: float | None = None
    wall_time_s: float = 0.0
    contact_windows: list[tuple[float, float]] = field(default_factory=list)
    #: The automatic truncation's search (``depth="auto"`` or ``n_exp="auto"``), else None.
    convergence: Any = None

    @property
    def regime(self) -> str:
        """``"pump"`` for T_A > T_B (heat pumped against the gradient is possible),
        ``"no gradient"`` for T_A = T_B, ``"reversed"`` for T_B > T_A (bath A is the colder)."""
        return _regime(self.params["TA"], self.params["TB"])

    def to_json(self) -> dict:
        """The JSON object of ``qpump pump --json`` (strict JSON after
        :func:`qpump.output.to_strict_json`: an undefined number is null)."""
        return {
            "params": self.params,
            "regime": self.regime,
            "I0": self.I0,
            "carnot_bound": self.carnot_bound,
            "cycles": [
                {"Q_A": c.Q_A, "Q_B": c.Q_B, "W_on": c.W_on, "W_off": c.W_off,
                 "cop_ratio": c.cop_ratio, "first_law_residual": c.first_law_residual,
                 "first_law_tolerance": c.first_law_tolerance,
                 "I0": c.I0, "cop_ratio_bare": c.cop_ratio_bare}
                for c in self.cycles
            ],
            "normal": {"heat_current": self.normal_heat_current},
            "wall_time_s": self.wall_time_s,
            **({"convergence": self.convergence.to_json()} if self.convergence is not None else {}),
        }


@dataclass(frozen=True)
class HeatPump:
    """The correlation-driven heat pump; defaults are the paper's Fig. 6 parameters.

    Parameters
    ----------
    TA, TB : float
        Temperatures of the hot bath A and the cold bath B (> 0, finite).
    omega_c : float
        Coupling strength Omega of V_AB (> 0).
    delta : float
        delta = phi_V - phi_chi; -pi/2 pumps from B to A.
    phi_v : float, optional
        The phase phi_V of V_AB; phi_chi = phi_v - delta. The isolated pair depends on delta
        alone, the baths (through sigma_x) do not: a gauge the paper leaves open. None (default)
        is phi_v = delta, phi_chi = 0.
    kappa_a, kappa_b : float
        Reorganisation energies of the Drude-Lorentz baths (> 0: each qubit needs its bath to
        rethermalize).
    gamma : float
        Drude cutoff of both baths (> 0).
    tau : float
        Contact time with V_AB on (> 0).
    tau_relax : float
        Rethermalization time with V_AB off (>= 0).
    ramp : {"none", "linear", "sin2"}
        How V_AB is switched: suddenly (the paper) or by f(t) V_AB rising over ``ramp_time``
        from the contact's start and falling over ``ramp_time`` from ``tau`` on (HEOM only).
    ramp_time : float
        Length of each ramp, in (0, tau] for a ramp, 0 for ``ramp="none"``.
    cycles : int
        Number of cycles (>= 1).
    chi11, chi23 : float, optional
        The X-state correlation (Eq. 8); both None gives the optimal chi of Eq. 10. ``chi23 = 0``
        and ``chi11 = 0`` give no correlation (the normal reference).
    initial : {"equilibrated", "product"}
        Start from the steady state of the uncoupled hierarchy (all ADOs) or from the bare
        product state rho_A x rho_B with all ADOs zero (switch-on transient of order kappa).
    depth, n_exp, expansion, terminator
        HEOM truncation: hierarchy depth (>= 1: the heat currents are read from the first tier,
        so depth 0, which keeps no bath memory, has none), exponents besides the Drude term,
        Matsubara or Pade. ``depth="auto"`` and/or ``n_exp="auto"`` raise them (and, with
        ``n_exp="auto"``, compare both expansions) until the heat per cycle changes by less than
        ``conv_tol`` (:func:`converge_pump`); the result then carries the
        convergence table, and a run that reaches the memory limit or ``time_limit_s`` first
        raises :class:`~qpump.errors.NotConvergedError` with it.
    conv_tol : float
        Convergence tolerance of the automatic truncation on Q_A, Q_B (absolute, > 0).
    time_limit_s : float, optional
        Wall-time budget of the automatic truncation's search (default: none).
    solver : {"heom", "lindblad"}
        Exact HEOM or the weak-coupling local master equation.
    dt_contact, dt_relax : float
        Output spacing while coupled and while relaxing (heat is integrated on this grid).
    memory_limit_bytes : int, optional
        Largest memory the HEOM run may use (default: half the machine's physical memory);
        checked before anything is allocated.

    Notes
    -----
    For T_B >= T_A there is no gradient to pump against (T_A = T_B) or the roles are swapped
    (T_B > T_A: bath A is the colder one); the run is still computed and reported with neutral
    words, and the Carnot bound T_B/(T_A - T_B), which does not exist there, is None.
    """

    TA: float = 2.0
    TB: float = 1.0
    omega_c: float = 0.1
    delta: float = -math.pi / 2
    phi_v: float | None = None
    kappa_a: float = 0.01
    kappa_b: float = 0.023
    gamma: float = 2.0
    tau: float = 6.1
    tau_relax: float = 500.0
    ramp: str = "none"
    ramp_time: float = 0.0
    cycles: int = 2
    chi11: float | None = None
    chi23: float | None = None
    initial: str = "equilibrated"
    depth: int | str = 3
    n_exp: int | str = 2
    expansion: str = "matsubara"
    terminator: bool = True
    solver: str = "heom"
    dt_contact: float = 0.01
    dt_relax: float = 0.1
    memory_limit_bytes: int | None = None
    conv_tol: float = 1e-5
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("TA", "TB", "omega_c", "gamma", "tau", "dt_contact", "dt_relax"):
            check.positive(name, getattr(self, name))
        for name, qubit in (("kappa_a", "A"), ("kappa_b", "B")):
            if check.finite(name, getattr(self, name)) <= 0:
                raise InvalidParameterError(
                    f"{name} = {getattr(self, name)} is outside the allowed range (0, inf): "
                    f"without a bath qubit {qubit} never rethermalizes and has no steady state")
        check.non_negative("tau_relax", self.tau_relax)
        check.finite("delta", self.delta)
        if self.phi_v is not None:
            check.finite("phi_v", self.phi_v)
        if isinstance(self.cycles, bool) or not isinstance(self.cycles, (int, np.integer)) \
                or self.cycles < 1:
            raise InvalidParameterError(f"cycles = {self.cycles!r} must be an integer >= 1")
        for name in ("depth", "n_exp"):
            if getattr(self, name) != AUTO:
                check.non_negative_int(name, getattr(self, name), check.MAX_TRUNCATION)
        check.positive("conv_tol", self.conv_tol)
        if self.time_limit_s is not None:
            check.positive("time_limit_s", self.time_limit_s)
        if self.auto_truncation and self.solver != "heom":
            raise InvalidParameterError(
                f"depth = {self.depth!r}, n_exp = {self.n_exp!r}: only the HEOM has a truncation "
                f"to converge (solver = {self.solver!r})")
        for name, allowed in (("expansion", EXPANSIONS), ("initial", INITIALS),
                              ("solver", SOLVERS), ("ramp", RAMPS)):
            check.one_of(name, getattr(self, name), allowed)
        check.non_negative("ramp_time", self.ramp_time)
        if self.ramp == "none" and self.ramp_time != 0:
            raise InvalidParameterError(
                f"ramp_time = {self.ramp_time:g} needs a ramp: give ramp = 'linear' or 'sin2' "
                "(ramp = 'none' switches V_AB suddenly)")
        if self.ramp != "none":
            if not 0 < self.ramp_time <= self.tau:
                raise InvalidParameterError(
                    f"ramp_time = {self.ramp_time:g} is outside the allowed range (0, tau = "
                    f"{self.tau:g}]: the coupling must be fully on by the time it starts to fall")
            if self.solver != "heom":
                raise InvalidParameterError(
                    f"ramp = {self.ramp!r} needs solver = 'heom' (the local master equation has "
                    "no ramped coupling)")
        if self.solver == "heom" and not self.auto_truncation and int(self.depth) < 1:
            raise InvalidParameterError(
                f"depth = {self.depth} keeps no bath memory, so the pump has no heat current "
                "(it is read from the first tier of the hierarchy); use depth >= 1")
        if self.memory_limit_bytes is not None:
            check.positive("memory_limit_bytes", self.memory_limit_bytes)
        self.correlation()  # validates chi11, chi23 against (A2a), (A2b)

    @property
    def v_phase(self) -> float:
        """phi_V, the phase of V_AB (``phi_v``, or delta when it is None)."""
        return self.delta if self.phi_v is None else float(self.phi_v)

    @property
    def truncation(self) -> tuple[int, int]:
        """(depth, n_exp) as integers; an automatic truncation must be resolved first
        (:meth:`converged`)."""
        if self.auto_truncation:
            raise InvalidParameterError(
                "the truncation is automatic (depth or n_exp = 'auto'): the search estimates each "
                "of its runs before it starts (HeatPump.converged)")
        return int(self.depth), int(self.n_exp)

    @property
    def auto_truncation(self) -> bool:
        """Whether ``depth`` or ``n_exp`` is ``"auto"``."""
        return AUTO in (self.depth, self.n_exp)

    def converged(self, progress: Callable[[Any], None] | None = None) -> tuple[HeatPump, Any]:
        """This pump at the truncation the automatic search settles on, and the search's
        :class:`~qpump.convergence.ConvergenceResult` (see ``depth="auto"``).

        Raises
        ------
        NotConvergedError
            If a limit is reached first (the message gives the last change; ``.result`` has the
            table).
        """
        from .convergence import EXPANSIONS as ALL_EXPANSIONS

        depths = range(1, 13) if self.depth == AUTO else [int(self.depth)]
        n_exps = range(0, 9) if self.n_exp == AUTO else [int(self.n_exp)]
        expansions = ALL_EXPANSIONS if self.n_exp == AUTO else (self.expansion,)
        start = replace(self, depth=min(depths), n_exp=min(n_exps))
        with warnings.catch_warnings():
            # The search's small truncations miss the spectrum by design; it judges them by their
            # changes. The truncation it settles on is checked again when it runs.
            warnings.simplefilter("ignore", TruncationWarning)
            result = converge_pump(start, "heat", conv_tol=self.conv_tol, depths=depths,
                                   n_exps=n_exps, expansions=expansions,
                                   time_limit_s=self.time_limit_s, progress=progress)
        if not result.converged:
            changes = [row.change for row in result.table if row.change is not None]
            change = f"{changes[-1]:.2e}" if changes else "none yet"
            raise NotConvergedError(
                f"the truncation did not converge to conv_tol = {self.conv_tol:g}: {result.reason} "
                f"after {result.runs} runs in {result.seconds:.0f} s, last change {change} at depth "
                f"{result.depth}, n_exp {result.n_exp} ({result.expansion})", result)
        return replace(self, depth=result.depth, n_exp=result.n_exp,
                       expansion=result.expansion), result

    def correlation(self):
        """The X-state correlation injected each cycle (built from the bare Gibbs lambdas), with
        the phase phi_chi = phi_V - delta."""
        return correlation_matrix(self.TA, self.TB, self.chi11, self.chi23,
                                  self.v_phase - self.delta, require_entangled=False)

    @property
    def carnot_bound(self) -> float | None:
        """T_B / (T_A - T_B), the Carnot COP of Eq. 18; None for T_A <= T_B, where there is no
        gradient to pump against and no bound."""
        return self.TB / (self.TA - self.TB) if self.TA > self.TB else None

    @property
    def coupled_hamiltonian(self) -> np.ndarray:
        """H_A + H_B + V_AB with phi_V = :attr:`v_phase`."""
        return H_FREE + coupling_potential(self.omega_c, self.v_phase)

    def params(self) -> dict:
        """All parameters as a JSON-ready dict."""
        return asdict(self)

    def memory_estimate(self) -> dict[str, int]:
        """Estimated peak memory of :meth:`run`, in bytes, before anything is allocated.

        The parts: this process now, the modules qpump imports lazily, the hierarchy (ADOs and
        integrator history), the steady state the run solves once (the initial state and the
        relaxation's steady-state frame; a sparse LU, or GMRES for large hierarchies; see
        :func:`qpump.heom.steady_state_memory_bytes`) and the time series; ``"total"`` is their
        sum. Against the measured peak resident memory of ``qpump pump`` (which also draws
        Fig. 6, not counted here): 0.68x at depth 3 (93 MB against 136 MB, the figure being most
        of the difference). Before the iterative solve, the LU made the peak at depth 8 (2.3 GiB);
        it is now the hierarchy itself.
        """
        import sys

        from .heom import (
            LAZY_IMPORTS_BYTES,
            process_memory_bytes,
            steady_state_memory_bytes,
        )

        n_times = self.cycles * (math.ceil(self.tau / self.dt_contact)
                                 + math.ceil(self.tau_relax / self.dt_relax) + 2)
        parts = {
            "process now": process_memory_bytes(),
            "imports to come": 0 if "scipy.sparse.linalg" in sys.modules else LAZY_IMPORTS_BYTES,
            # rho (4 x 4 complex) in the segments, assembled, and two working copies; the series.
            "time series": n_times * (4 * 256 + 30 * 8),
        }
        if self.solver == "heom":
            from . import _core

            depth, n_exp = self.truncation
            n_exponents = 2 * (n_exp + 1)  # per bath: the Drude term and n_exp more
            n_ados = _core.ado_count(n_exponents, depth)
            if n_ados is None or n_ados >= 2**32 - 1:
                raise HierarchyTooLargeError(
                    f"depth = {self.depth} with n_exp = {self.n_exp} gives a hierarchy too large "
                    "to index; lower depth or n_exp")
            parts["ADOs and integrator"] = _core.solver_memory_bytes(n_ados, 4, n_exponents)
            # the start's and the relaxation frame's (one solve, cached)
            parts["steady state"] = steady_state_memory_bytes(n_ados, 4, n_exponents, depth)
        parts["total"] = sum(parts.values())
        return parts

    def _check_memory(self) -> dict[str, int]:
        from .heom import default_memory_limit, memory_error

        parts = self.memory_estimate()
        limit = self.memory_limit_bytes or default_memory_limit()
        if parts["total"] > limit:
            raise memory_error("the pump run", parts["total"], limit,
                               {k: v for k, v in parts.items() if k != "total"})
        return parts

    def _backend(self, log: Callable[[str], None] | None = None) -> PumpBackend:
        return HEOMBackend(self, log) if self.solver == "heom" else LindbladBackend(self)

    @property
    def contact_duration(self) -> float:
        """How long V_AB acts in a cycle: ``tau``, plus ``ramp_time`` with a ramp."""
        return self.tau + (self.ramp_time if self.ramp != "none" else 0.0)

    def contact_times(self) -> np.ndarray:
        """The output grid of a contact: ``tau`` in equal steps of at most ``dt_contact``."""
        return _grid(self.tau, self.dt_contact)

    def _contact(self, backend: PumpBackend, state: Any, v: np.ndarray, clock: float,
                 bar: Any) -> tuple[Segment, float, float, float]:
        """One contact: the segment and the switching works W_on, W_off with the quadrature
        error of their sum (0 for a sudden switch, where W = +-<V_AB> at the switch)."""
        if self.ramp == "none":
            seg = backend.evolve(state, self.coupled_hamiltonian, self.contact_times(),
                                 progress=_advancing(bar, clock))
            w_on = float(np.real(np.trace(v @ seg.rho[0])))
            return seg, w_on, -float(np.real(np.trace(v @ seg.rho[-1]))), 0.0
        # Rising with H_FREE exact, then V_AB exact on the plateau and while it falls: the
        # linear ramp's kinks fall on segment boundaries.
        # The work integrand f'(t) <V_AB> needs the ramp resolved however short it is.
        ramp_grid = _grid(self.ramp_time, min(self.dt_contact, self.ramp_time / RAMP_STEPS))
        rise = Ramp(self.ramp, 0.0, self.ramp_time, 0.0, 1.0)
        fall = Ramp(self.ramp, 0.0, self.ramp_time, 0.0, -1.0)
        # (H exact, output times, its ramp or None, the coupling f that H itself carries)
        plan = [(H_FREE, ramp_grid, rise, 0.0),
                (self.coupled_hamiltonian, _grid(self.tau - self.ramp_time, self.dt_contact), None,
                 1.0),
                (self.coupled_hamiltonian, ramp_grid, fall, 1.0)]
        from scipy.integrate import simpson  # scipy: imported when first needed

        pieces, works, work_error, start = [], [], 0.0, 0.0
        for hamiltonian, times, profile, carried in plan:
            if times[-1] == 0.0:  # no plateau when ramp_time = tau
                continue
            seg = backend.evolve(state, hamiltonian, times, progress=_advancing(bar, clock + start),
                                 drive=[(v, profile)] if profile else [])
            coupling = np.full(times.size, carried)
            if profile is not None:
                power = profile.derivative(times) * np.real(np.einsum("ij,tji->t", v, seg.rho))
                works.append(float(simpson(power, x=times)))
                work_error += float(invariants.simpson_error(times, power[:, None])[0])
                coupling = coupling + profile(times)
            pieces.append((start, replace(seg, coupling=coupling)))
            state, start = seg.final_state, start + float(times[-1])
        return _joined(pieces), works[0], works[1], work_error

    def relaxation_times(self) -> np.ndarray:
        """The output grid of a relaxation (the single time 0 when ``tau_relax`` is 0)."""
        return _grid(self.tau_relax, self.dt_relax) if self.tau_relax > 0 else np.zeros(1)

    def run(self, progress: bool = False, normal_reference: bool = True,
            backend: PumpBackend | None = None) -> PumpResult:
        """Run ``cycles`` pump cycles and return the time series and the per-cycle table.

        Parameters
        ----------
        progress : bool
            A progress bar over the simulated time (and phase lines for large hierarchies).
        normal_reference : bool
            Also compute the steady heat current of the coupled, uncorrelated pair.
        backend : PumpBackend, optional
            Evolve with this backend instead of the one ``solver`` names (e.g. Aer's:
            :func:`qpump.quantum.run_aer_pump`).

        Raises
        ------
        HierarchyTooLargeError
            If the estimated peak memory (:meth:`memory_estimate`) exceeds the limit; checked
            before anything is allocated.
        InvalidStateError
            If adding chi to the relaxed state does not give a state (the relaxation was too short).
        InvariantViolationError
            If a state, the first law or the second law fails its check (see
            :mod:`qpump.invariants`): no result is returned.
        """
        if self.auto_truncation and backend is None:
            log = _log if progress else None
            pump, convergence = self.converged(
                progress=(lambda row: log(f"truncation: {row}")) if log else None)
            result = pump.run(progress, normal_reference)
            result.convergence = convergence
            result.params.update(depth_requested=self.depth, n_exp_requested=self.n_exp)
            return result
        start = time.perf_counter()
        memory = self._check_memory()
        backend = backend if backend is not None else self._backend(_log if progress else None)
        if backend.log:
            from .heom import format_bytes

            backend.log(f"estimated peak memory {format_bytes(memory['total'])}")
        correlation = self.correlation()
        chi = correlation.matrix
        i0_bare = float(mutual_information(correlation.state()))
        v = coupling_potential(self.omega_c, self.v_phase)
        state = backend.initial_state(self.initial)
        pieces: list[tuple[float, Segment, bool]] = []
        cycles: list[CycleRecord] = []
        clock = 0.0
        windows = []
        relax_times, on_time = self.relaxation_times(), self.contact_duration
        if self.ramp != "none" and not backend.supports_drive:
            raise InvalidParameterError(f"ramp = {self.ramp!r}: this backend has no ramped coupling")
        bar = _progress(total=self.cycles * (on_time + self.tau_relax), enabled=progress,
                        desc="pump")
        try:
            for index in range(self.cycles):
                rho = backend.rho(state) + chi
                min_eig = float(np.linalg.eigvalsh(rho)[0])
                if min_eig < -1e-12:
                    raise InvalidStateError(
                        f"cycle {index + 1}: the relaxed state plus chi is not a state (smallest "
                        f"eigenvalue {min_eig:.3g}); tau_relax = {self.tau_relax:g} is too short "
                        "for the qubits to rethermalize: lengthen tau_relax")
                state = backend.with_rho(state, rho)
                contact, w_on, w_off, work_error = self._contact(backend, state, v, clock, bar)
                # Checked before the relaxation starts from it: a state lost in the contact is a
                # failed check, not an input the relaxation may refuse.
                invariants.check_density_matrices(contact.rho, f"cycle {index + 1}, contact",
                                                  times=clock + contact.times,
                                                  cause=backend.contact_hint)
                relax = backend.evolve(contact.final_state, H_FREE, relax_times,
                                       progress=_advancing(bar, clock + on_time))
                _advancing(bar, clock)(on_time + self.tau_relax)
                state = relax.final_state
                q = contact.heat[-1] + relax.heat[-1]
                e_start = float(np.real(np.trace(H_FREE @ contact.rho[0])))
                e_end = float(np.real(np.trace(H_FREE @ relax.rho[-1])))
                d_int = float(np.sum(relax.interaction_energy[-1] - contact.interaction_energy[0]))
                residual = e_end - e_start + d_int - float(q.sum()) - (w_on + w_off)
                tolerance = self._check_cycle(index, clock, contact, relax, residual,
                                              abs(w_on) + abs(w_off), work_error, backend)
                i0 = float(mutual_information(contact.rho[0]))
                cycles.append(CycleRecord(
                    index=index + 1, Q_A=float(q[0]), Q_B=float(q[1]), W_on=w_on, W_off=w_off,
                    I0=i0, cop_ratio=float(q[1]) / (self.TA * i0) if i0 > 0 else math.nan,
                    cop_ratio_bare=float(q[1]) / (self.TA * i0_bare) if i0_bare > 0 else math.nan,
                    carnot_bound=self.carnot_bound, first_law_residual=residual,
                    min_eigenvalue_after_chi=min_eig, first_law_tolerance=tolerance))
                windows.append((clock, clock + on_time))
                pieces.append((clock, contact, True))
                pieces.append((clock + on_time, relax, False))
                clock += on_time + self.tau_relax
        finally:
            bar.close()
        normal = self.normal_heat_current(backend) if normal_reference else None
        t, rho, series = self._assemble(pieces, v)
        for record in cycles:
            this = series["cycle"] == record.index
            invariants.check_entropy_production(
                series["sigma"][this], record.first_law_tolerance * (1 / self.TA + 1 / self.TB),
                f"cycle {record.index}", times=t[this], cause=backend.truncation_hint)
        return PumpResult(params=self.params(), t=t, series=series, rho=rho, cycles=cycles,
                          I0=cycles[0].I0, carnot_bound=self.carnot_bound,
                          normal_heat_current=normal, wall_time_s=time.perf_counter() - start,
                          contact_windows=windows)

    def _check_cycle(self, index: int, clock: float, contact: Segment, relax: Segment,
                     residual: float, work: float, work_error: float, backend: PumpBackend) -> float:
        """Check the relaxation's states and the first law of one cycle (the contact's states are
        checked as soon as they exist); return the cycle's first-law tolerance."""
        where = f"cycle {index + 1}"
        invariants.check_density_matrices(relax.rho, f"{where}, relaxation",
                                          times=clock + self.contact_duration + relax.times,
                                          cause=backend.truncation_hint)
        flow = work
        for seg in (contact, relax):
            if seg.times.size > 1:
                flow += float(np.trapezoid(np.abs(seg.heat_current).sum(axis=1), seg.times))
        quadrature = float(contact.heat_error.sum() + relax.heat_error.sum()) + work_error
        tolerance = invariants.first_law_tolerance(backend.rtol, flow, quadrature)
        invariants.check_first_law(residual, tolerance, where, cause=backend.truncation_hint)
        return tolerance

    def normal_heat_current(self, backend: PumpBackend | None = None) -> float:
        """Steady heat current from bath A to bath B with the qubits coupled all the time and no
        correlation (the normal reference of Fig. 6): -j_A in the steady state (positive from
        hot to cold when T_A > T_B)."""
        backend = backend or self._backend()
        ss = backend.steady_state(self.coupled_hamiltonian)
        invariants.check_density_matrices(backend.rho(ss), "the steady state of the coupled pair",
                                          cause=backend.truncation_hint)
        seg = backend.evolve(ss, self.coupled_hamiltonian, np.zeros(1))
        return float(-seg.heat_current[0, 0])

    def _assemble(self, pieces, v) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        ts, rhos, heats, currents, coupled, factors, cycle_start = [], [], [], [], [], [], []
        offset = np.zeros(2)
        for k, (t0, seg, on) in enumerate(pieces):
            keep = slice(0, None) if k == 0 else slice(1, None)
            if on and k > 0:
                keep = slice(0, None)  # the correlation jump: keep both sides of it
            ts.append(t0 + seg.times[keep])
            rhos.append(seg.rho[keep])
            heats.append(offset + seg.heat[keep])
            currents.append(seg.heat_current[keep])
            coupled.append(np.full(seg.times[keep].size, on))
            factor = seg.coupling if seg.coupling is not None else np.full(seg.times.size, float(on))
            factors.append(factor[keep])
            cycle_start.append(np.full(seg.times[keep].size, k // 2))
            offset = offset + seg.heat[-1]
        t = np.concatenate(ts)
        rho = np.concatenate(rhos)
        heat = np.concatenate(heats)
        cycle = np.concatenate(cycle_start)
        e_a, e_b = local_energies(rho)
        s_ab = np.atleast_1d(entropy(rho))
        s_a = np.atleast_1d(entropy(partial_trace(rho, 0)))
        s_b = np.atleast_1d(entropy(partial_trace(rho, 1)))
        mi = np.atleast_1d(mutual_information(rho))
        on = np.concatenate(coupled)
        starts = np.searchsorted(cycle, np.arange(cycle.max() + 1))  # cycles are in time order
        first = starts[cycle]  # for every time, the index where its cycle starts
        d_heat = heat - heat[first]
        entropy_flow = d_heat[:, 0] / self.TA + d_heat[:, 1] / self.TB
        sigma = s_ab - s_ab[first] - entropy_flow
        sigma0 = (s_a - s_a[first]) + (s_b - s_b[first]) - entropy_flow
        series = {
            "Q_A": heat[:, 0], "Q_B": heat[:, 1],
            "j_A": np.concatenate(currents)[:, 0], "j_B": np.concatenate(currents)[:, 1],
            "E_A": np.asarray(e_a), "E_B": np.asarray(e_b), "sed": np.asarray(e_a - e_b),
            "concurrence": np.atleast_1d(concurrence(rho)), "mutual_information": mi,
            "delta_S_AB": s_ab - s_ab[first], "sigma": sigma, "sigma0": sigma0,
            "delta_I": mi - mi[first],
            "V": np.concatenate(factors) * np.real(np.einsum("ij,tji->t", v, rho)),
            "coupling": np.concatenate(factors),
            "coupled": on, "cycle": cycle + 1,
        }
        return t, rho, series


#: What :func:`converge_pump` can converge.
PUMP_QUANTITIES = ("heat", "current")


def converge_pump(
    pump: HeatPump,
    quantity: str = "heat",
    *,
    conv_tol: float = 1e-5,
    depths: Sequence[int] = range(1, 13),
    n_exps: Sequence[int] = range(0, 9),
    expansions: Sequence[str] | None = None,
    time_limit_s: float | None = None,
    progress: Callable[[Any], None] | None = None,
) -> Any:
    """Converge the heat pump (paper Sec. V) in the truncation.

    Parameters
    ----------
    pump : HeatPump
        The model; its ``depth``, ``n_exp`` and ``expansion`` are replaced at every run, its
        ``memory_limit_bytes`` is the limit (default half the physical memory).
    quantity : {"heat", "current"}, optional
        ``"heat"``: ``[Q_A, Q_B]`` of every cycle (shape (cycles, 2); a run without the normal
        reference). ``"current"``: the normal reference, the steady heat current of the coupled
        pair (shape (1,)).
    conv_tol, depths, n_exps, expansions, time_limit_s, progress
        As in :func:`qpump.convergence.converge` (``expansions`` None: its ``SEARCH_ORDER``).
        The memory estimate is :meth:`HeatPump.memory_estimate`.

    Returns
    -------
    qpump.convergence.ConvergenceResult
    """
    from . import _core
    from .convergence import SEARCH_ORDER, converge
    from .heom import default_memory_limit

    if quantity not in PUMP_QUANTITIES:
        raise InvalidParameterError(f"quantity = {quantity!r} must be one of {', '.join(PUMP_QUANTITIES)}")
    if pump.solver != "heom":
        raise InvalidParameterError(f"pump.solver = {pump.solver!r}: only the HEOM has a truncation")

    def build(depth: int, n_exp: int, expansion: str) -> HeatPump:
        return replace(pump, depth=depth, n_exp=n_exp, expansion=expansion)

    def measure(p: HeatPump) -> np.ndarray:
        if quantity == "heat":
            result = p.run(normal_reference=False)
            return np.array([[c.Q_A, c.Q_B] for c in result.cycles])
        return np.array([p.normal_heat_current()])

    def estimate(depth: int, n_exp: int, expansion: str) -> tuple[int | None, int]:
        n_ados = _core.ado_count(2 * (n_exp + 1), depth)
        try:
            need = build(depth, n_exp, expansion).memory_estimate()
        except HierarchyTooLargeError:
            return None, 2**63
        return n_ados, int(need["total"])

    return converge(build, measure, conv_tol=conv_tol, depths=depths, n_exps=n_exps,
                    expansions=SEARCH_ORDER if expansions is None else expansions,
                    memory_limit_bytes=pump.memory_limit_bytes or default_memory_limit(),
                    time_limit_s=time_limit_s, progress=progress, estimate=estimate)


def _joined(pieces: list[tuple[float, Segment]]) -> Segment:
    """Consecutive segments ``(start, segment)`` as one (each later one's first point, equal to
    the previous one's last, dropped; heat accumulated across them)."""
    offsets = np.cumsum([np.zeros(2)] + [seg.heat[-1] for _, seg in pieces[:-1]], axis=0)

    def joined(part: Callable[[float, Segment, np.ndarray], np.ndarray]) -> np.ndarray:
        return np.concatenate([part(start, seg, offset)[0 if k == 0 else 1:]
                               for k, ((start, seg), offset)
                               in enumerate(zip(pieces, offsets, strict=True))])

    return Segment(
        times=joined(lambda start, seg, _: start + seg.times),
        rho=joined(lambda _, seg, __: seg.rho),
        heat_current=joined(lambda _, seg, __: seg.heat_current),
        heat=joined(lambda _, seg, offset: offset + seg.heat),
        interaction_energy=joined(lambda _, seg, __: seg.interaction_energy),
        final_state=pieces[-1][1].final_state,
        heat_error=np.sum([seg.heat_error for _, seg in pieces], axis=0),
        coupling=joined(lambda _, seg, __: _coupling_of(seg)),
    )


def _coupling_of(seg: Segment) -> np.ndarray:
    if seg.coupling is None:
        raise ValueError("a ramped contact's pieces all carry their coupling f(t)")
    return seg.coupling


def refuse_drive(drive: Sequence[Any], backend: str) -> None:
    """A backend without ``supports_drive`` is given no drive (HeatPump.run checks first)."""
    if drive:
        raise InvalidParameterError(f"{backend} has no ramped coupling; use ramp='none'")


def _grid(duration: float, dt: float) -> np.ndarray:
    """0..duration in the fewest equal steps of at most ``dt`` (at least one step); a ratio that
    is an integer up to rounding (6.1 / 0.05 = 122.00000000000001) counts as that integer."""
    steps = max(1, math.ceil(duration / dt - 1e-9))
    return np.linspace(0.0, duration, steps + 1)


def _regime(TA: float, TB: float) -> str:
    return "pump" if TA > TB else ("no gradient" if TA == TB else "reversed")


def _log(line: str) -> None:
    """A progress line on stderr that does not break a progress bar."""
    import sys

    from tqdm.auto import tqdm

    tqdm.write(f"qpump: {line}", file=sys.stderr)


def _advancing(bar, start: float) -> Callable[[float], None]:
    """A callback that moves ``bar`` to ``start + t`` for the time t reached in a segment."""
    return lambda t: bar.update(start + t - bar.n)


def _progress(total: float, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="t", leave=False,
                bar_format="{l_bar}{bar}| t = {n:.1f}/{total:.1f} [{elapsed}<{remaining}]")

