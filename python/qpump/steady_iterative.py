"""Iterative steady state of the HEOM hierarchy: GMRES with a tier block-ILU preconditioner.

The steady state solves ``L x = 0`` on the whole hierarchy with the equation of ``(rho_0)_00``
replaced by ``tr rho_0 = 1`` (:func:`stationary_system` builds that system exactly as
:meth:`qpump.heom.HEOMSolver.steady_state` does). A sparse direct LU of it fills in fast with the
depth (2.4 GB and most of two minutes at depth 8 of the two-qubit pump, dimension 48,048);
:func:`solve_stationary` solves the same system with restarted GMRES (scipy) and a preconditioner
built from the structure of the hierarchy, in a few tens of megabytes.

Structure used (docs/heom.md). The unknowns are ordered by ADO, ``d^2`` of them per ADO, and the
ADOs by tier (total excitation ``|n|``). An ADO couples only to itself (a diagonal block
``-i[H, .] - sum_k n_k nu_k`` minus the terminator) and to ADOs one tier up or down
(``n +- e_k``): within a tier, ADOs do not couple. Every diagonal block but ADO 0's decays at
rates of at least ``min Re nu_k`` and is well conditioned; the block of ``rho`` alone is nearly
singular (the system's relaxation, of order kappa, comes only through tier 1).

Preconditioner ``"block-ilu"`` (default): a block incomplete LU factorization that eliminates the
deepest tier first. Each ADO's pivot block is its diagonal block minus the feedback of its
neighbours one tier up, ``S_a = D_a - sum_b A_ab S_b^-1 A_ba``, which makes ADO 0's pivot the
effective Liouvillian of ``rho`` (its relaxation included); the coupling that this drops is the
fill between different ADOs of one tier. For a single exponent (a chain of ADOs) it is the exact
LU. Its storage is one dense ``d^2 x d^2`` inverse per ADO plus a copy of the tier couplings; one
application costs about one matrix-vector product. ``"block-jacobi"`` (inverses of the diagonal
blocks only) is kept for comparison: 3 to 6 times more iterations.

Measured on the pump (d = 4, two Drude-Lorentz baths with 3 exponents each, kappa_b = 2.3
kappa_a, one BLAS thread, on a loaded 2-core machine): 5 GMRES iterations at kappa_a = 0.01, 9 at
0.1, 14 at 0.5, 17 to 21 at 1 to 2, independent of the depth (3 to 8); depth 8 (dimension 48,048)
in 0.3 to 0.5 s of CPU and 65 MB beyond the matrix, against 120 to 145 s and 2.1 to 2.6 GB for
the direct LU, with ``rho`` equal to the direct solution within 1e-12. Block-Jacobi needed 22 to
99 iterations there and failed (singular pivot of rho, or stagnation) for a qubit with an
underdamped bath and at strong coupling with a slow bath, where block-ILU took 11 to 29.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._validate import one_of, positive, positive_int
from .errors import ComputationError, InvalidParameterError

__all__ = [
    "PRECONDITIONERS",
    "DEFAULT_RTOL",
    "DEFAULT_RESTART",
    "DEFAULT_MAXITER",
    "ITERATIVE_MIN_DIM",
    "IterativeSolveError",
    "IterativeSolution",
    "HierarchyPreconditioner",
    "stationary_system",
    "hierarchy_tiers",
    "solve_stationary",
    "iterative_memory_parts",
    "iterative_memory_bytes",
]

#: The preconditioners :func:`solve_stationary` offers.
PRECONDITIONERS = ("block-ilu", "block-jacobi")
#: Default relative residual ``||A x - b|| / ||b||`` required (rho then agrees with the direct
#: solution within about 1e-12 on the measured hierarchies).
DEFAULT_RTOL = 1e-11
#: Default GMRES restart length (the Krylov basis holds ``restart + 1`` vectors).
DEFAULT_RESTART = 40
#: Default largest number of GMRES iterations (preconditioned matrix-vector products).
DEFAULT_MAXITER = 1000
#: Liouville dimension (``n_ados * d**2``) from which the caller should prefer the iterative
#: solve to the sparse direct LU. Measured on the pump (CPU seconds, peak extra memory): at
#: 1,344 the LU takes 0.02 s and 3 MB against 0.03 s and 4 MB; at 3,360 both take 0.04 s (8 MB
#: against 10 MB); at 7,392 0.57 s and 49 MB against 0.065 s and 20 MB; at 48,048 130 s and
#: 2.1 GB against 0.4 s and 65 MB. Below it the LU is as fast and exact to rounding.
ITERATIVE_MIN_DIM = 4096
#: A restart cycle that reduces the residual by less than this factor has stagnated (restarted
#: GMRES would repeat the same cycle).
_STAGNATION = 0.99
#: Largest transient per array while the block-ILU pivots are formed (the tier couplings are
#: processed in chunks of this many bytes of dense blocks).
_CHUNK_BYTES = 4 * 1024**2


class IterativeSolveError(ComputationError):
    """The iterative steady-state solve did not reach its tolerance (or its preconditioner failed).

    Attributes
    ----------
    residual : float
        The relative residual ``||A x - b|| / ||b||`` reached (NaN if the solve did not start).
    iterations : int
        GMRES iterations done.
    rtol : float
        The relative residual that was required.
    """

    def __init__(self, message: str, *, residual: float, iterations: int, rtol: float) -> None:
        self.residual = residual
        self.iterations = iterations
        self.rtol = rtol
        super().__init__(message)


@dataclass(frozen=True)
class IterativeSolution:
    """The result of :func:`solve_stationary`.

    Attributes
    ----------
    x : numpy.ndarray, shape (dim,)
        The solution (rescaled ADOs, as the direct solve returns it: ``x[:d*d]`` is rho,
        row-major; ADO ``a`` is ``x[a*d*d:(a+1)*d*d]`` times ``ado_scales()[a]``).
    residual : float
        The true relative residual ``||A x - b|| / ||b||``, computed from ``x`` after the solve.
    iterations : int
        GMRES iterations (each one matrix-vector product and one preconditioner application).
    preconditioner : str
        The preconditioner's name (one of :data:`PRECONDITIONERS`).
    setup_seconds : float
        Wall time spent building the preconditioner (and the compressed copy of the matrix).
    solve_seconds : float
        Wall time spent in the GMRES iterations.
    memory_bytes : int
        Estimated peak memory the solve allocated beyond its inputs: the row-compressed copy of
        the matrix, the preconditioner, the largest transient of its setup and the Krylov basis.
    restarts : int
        GMRES restart cycles run.
    """

    x: np.ndarray
    residual: float
    iterations: int
    preconditioner: str
    setup_seconds: float
    solve_seconds: float
    memory_bytes: int
    restarts: int = 0


def stationary_system(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, dim: int,
                      d: int) -> tuple[sp.csc_matrix, np.ndarray]:
    """The linear system of the stationary hierarchy, built as ``HEOMSolver.steady_state`` does.

    Parameters
    ----------
    rows, cols, vals : numpy.ndarray
        COO triplets of the generator ``L`` (``HEOMSolver._core.generator()``: rescaled ADOs,
        index ``a d^2 + i d + j``); duplicates are summed.
    dim : int
        Liouville dimension ``n_ados * d**2``.
    d : int
        Dimension of the system.

    Returns
    -------
    mat : scipy.sparse.csc_matrix, shape (dim, dim)
        ``L`` with its row 0 (the equation of ``(rho_0)_00``, redundant by trace preservation)
        replaced by the trace condition ``sum_i (rho_0)_ii``.
    rhs : numpy.ndarray, shape (dim,)
        ``e_0`` (``tr rho_0 = 1``, every other equation homogeneous).
    """
    rows = np.asarray(rows).astype(np.int64)
    cols = np.asarray(cols).astype(np.int64)
    vals = np.asarray(vals)
    # Replace the equation of rho_00 (redundant by trace preservation) with tr rho = 1.
    keep = rows != 0
    diag = np.array([i * d + i for i in range(d)], dtype=np.int64)
    rows = np.concatenate([rows[keep], np.zeros(d, dtype=np.int64)])
    cols = np.concatenate([cols[keep], diag])
    vals = np.concatenate([vals[keep], np.ones(d, dtype=complex)])
    mat = sp.csc_matrix((vals, (rows, cols)), shape=(dim, dim))
    rhs = np.zeros(dim, dtype=complex)
    rhs[0] = 1.0
    return mat, rhs


def hierarchy_tiers(mat: sp.spmatrix | sp.sparray, d: int) -> np.ndarray:
    """Tier of every ADO, read from the block couplings of the matrix.

    The tier of an ADO is its distance from ADO 0 in the graph of its nonzero coupling blocks
    (every coupling changes the tier by one, so this is ``|n|`` when every exponent couples).
    ADOs that no coupling reaches (an exponent with ``c = 0``) are put one tier below the
    deepest.

    Parameters
    ----------
    mat : scipy sparse matrix, shape (n_ados d^2, n_ados d^2)
        The generator or the stationary system.
    d : int
        Dimension of the system.

    Returns
    -------
    numpy.ndarray of int64, shape (n_ados,)
    """
    from scipy.sparse.csgraph import shortest_path

    m = d * d
    n = mat.shape[0] // m
    coo = sp.coo_matrix(mat)
    brow = coo.row // m
    bcol = coo.col // m
    off = brow != bcol
    graph = sp.csr_matrix((np.ones(int(off.sum())), (brow[off], bcol[off])), shape=(n, n))
    graph = (graph + graph.T).tocsr()
    graph.data[:] = 1.0
    dist = shortest_path(graph, method="D", unweighted=True, indices=0)
    reached = np.isfinite(dist)
    tiers = np.empty(n, dtype=np.int64)
    tiers[reached] = dist[reached].astype(np.int64)
    tiers[~reached] = int(tiers[reached].max()) + 1 if (~reached).any() else 0
    return tiers


def _index(idx: np.ndarray, m: int) -> slice | np.ndarray:
    """The unknowns of the ADOs ``idx`` (sorted): a slice when they are contiguous."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return slice(int(idx[0]) * m, (int(idx[-1]) + 1) * m)
    return (idx[:, None] * m + np.arange(m)).ravel()


def _apply_blocks(blocks: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``blocks[a] @ v[a]`` for every block ``a`` of ``v`` (flattened)."""
    m = blocks.shape[1]
    return np.matmul(blocks, v.reshape(-1, m, 1)).reshape(-1)


def _interrupt_if(should_stop: Callable[[], bool] | None, where: str) -> None:
    if should_stop is not None and should_stop():
        raise KeyboardInterrupt(f"steady state (iterative) interrupted {where}")


class HierarchyPreconditioner:
    """Block preconditioner of the stationary HEOM system, ordered by tier.

    ``"block-ilu"``: ``M = (S + A_down) S^-1 (S + A_up)`` with ``A_down`` the couplings from a
    tier to the next deeper one, ``A_up`` those to the next shallower one and ``S`` block
    diagonal with ``S_a = D_a - sum_b A_ab S_b^-1 A_ba`` over the neighbours ``b`` of ``a`` one
    tier deeper (formed from the deepest tier up). ``"block-jacobi"``: ``M = D``, the diagonal
    blocks. Couplings within a tier or across more than one tier (there are none in a HEOM
    generator) are left out of ``M``.

    Parameters
    ----------
    mat : scipy.sparse.csr_matrix
        The stationary system (canonical: no duplicate entries).
    d : int
        Dimension of the system (blocks of ``d**2``).
    kind : str, optional
        One of :data:`PRECONDITIONERS`.
    tiers : numpy.ndarray, optional
        Tier of each ADO (``HEOMSolver.labels().sum(axis=1)``); read from the matrix
        (:func:`hierarchy_tiers`) when None.
    should_stop : callable, optional
        Polled once per tier; when it returns True the setup raises KeyboardInterrupt.

    Raises
    ------
    IterativeSolveError
        If a pivot block is singular or not finite (the generator may have no unique steady
        state).

    Attributes
    ----------
    nbytes : int
        Memory held (inverse blocks and the copies of the tier couplings).
    setup_peak_bytes : int
        Largest transient memory of the setup beyond ``nbytes``.
    """

    def __init__(self, mat: sp.csr_matrix, d: int, *, kind: str = "block-ilu",
                 tiers: np.ndarray | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        one_of("preconditioner", kind, PRECONDITIONERS)
        m = d * d
        n = mat.shape[0] // m
        if tiers is None:
            tiers = hierarchy_tiers(mat, d)
        tiers = np.asarray(tiers)
        if tiers.shape != (n,) or not np.issubdtype(tiers.dtype, np.integer) or (tiers < 0).any():
            raise InvalidParameterError(
                f"tiers has shape {tiers.shape} and dtype {tiers.dtype}: give one integer >= 0 per "
                f"ADO ({n} ADOs)")
        levels = [np.flatnonzero(tiers == t) for t in range(int(tiers.max()) + 1)]
        levels = [idx for idx in levels if len(idx)]
        self.kind = kind
        self.m = m
        self.shape = mat.shape
        self.n_levels = len(levels)
        self.index = [_index(idx, m) for idx in levels]
        self.down: list[Any] = [None] * self.n_levels
        self.up: list[Any] = [None] * self.n_levels
        self.inv: list[np.ndarray] = [np.empty((0, m, m), dtype=complex)] * self.n_levels
        self.setup_peak_bytes = 0
        ilu = kind == "block-ilu"
        for t in range(self.n_levels - 1, -1, -1):
            _interrupt_if(should_stop, "while building the preconditioner")
            rows = mat[self.index[t]]
            pivots = self._diagonal_blocks(rows[:, self.index[t]], len(levels[t]))
            if ilu:
                if t > 0:
                    self.up[t] = rows[:, self.index[t - 1]].tocsr()
                if t + 1 < self.n_levels:
                    self.down[t] = rows[:, self.index[t + 1]].tocsr()
                    pivots -= self._feedback(self.down[t], self.up[t + 1], self.inv[t + 1])
            del rows
            self.setup_peak_bytes = max(self.setup_peak_bytes, 2 * pivots.nbytes)
            try:
                inv = np.linalg.inv(pivots)
            except np.linalg.LinAlgError:
                inv = np.full_like(pivots, np.nan)
            if not np.all(np.isfinite(inv)):
                cause = ("the generator may have no unique steady state (a part of the system "
                         "without a bath); use the direct solver" if ilu else
                         "the diagonal blocks alone do not determine rho; use block-ilu")
                raise IterativeSolveError(
                    f"the {kind} preconditioner has a singular pivot block in tier {t}: {cause}",
                    residual=math.nan, iterations=0, rtol=math.nan)
            self.inv[t] = inv
        self.nbytes = sum(b.nbytes for b in self.inv) + sum(
            c.data.nbytes + c.indices.nbytes + c.indptr.nbytes
            for c in self.down + self.up if c is not None)

    def _diagonal_blocks(self, square: sp.csr_matrix, count: int) -> np.ndarray:
        """The dense diagonal blocks of a tier's square part."""
        m = self.m
        coo = square.tocoo()
        keep = coo.row // m == coo.col // m
        blocks = np.zeros((count, m, m), dtype=complex)
        blocks[coo.row[keep] // m, coo.row[keep] % m, coo.col[keep] % m] = coo.data[keep]
        return blocks

    def _feedback(self, down: sp.csr_matrix, up: sp.csr_matrix, inv_hi: np.ndarray) -> np.ndarray:
        """``sum_b A_ab S_b^-1 A_ba`` for every ADO ``a`` of a tier over its ADOs ``b`` one deeper."""
        m = self.m
        n_lo = down.shape[0] // m
        n_hi = inv_hi.shape[0]
        out = np.zeros((n_lo, m, m), dtype=complex)
        dn = down.tocoo()
        upc = up.tocoo()
        key_dn = (dn.row // m).astype(np.int64) * n_hi + dn.col // m
        key_up = (upc.col // m).astype(np.int64) * n_hi + upc.row // m
        links = np.unique(key_dn)
        if len(links) == 0:
            return out
        link_dn = np.searchsorted(links, key_dn)
        link_up = np.minimum(np.searchsorted(links, key_up), len(links) - 1)
        valid = links[link_up] == key_up
        order_dn = np.argsort(link_dn, kind="stable")
        order_up = np.flatnonzero(valid)[np.argsort(link_up[valid], kind="stable")]
        sorted_dn = link_dn[order_dn]
        sorted_up = link_up[order_up]
        chunk = max(1, _CHUNK_BYTES // (16 * m * m))
        transient = out.nbytes + 5 * min(chunk, len(links)) * 16 * m * m + 40 * (dn.nnz + upc.nnz)
        self.setup_peak_bytes = max(self.setup_peak_bytes, transient)
        for start in range(0, len(links), chunk):
            stop = min(start + chunk, len(links))
            size = stop - start
            a_dn = np.zeros((size, m, m), dtype=complex)
            a_up = np.zeros((size, m, m), dtype=complex)
            lo, hi = np.searchsorted(sorted_dn, [start, stop])
            e = order_dn[lo:hi]
            a_dn[link_dn[e] - start, dn.row[e] % m, dn.col[e] % m] = dn.data[e]
            lo, hi = np.searchsorted(sorted_up, [start, stop])
            e = order_up[lo:hi]
            a_up[link_up[e] - start, upc.row[e] % m, upc.col[e] % m] = upc.data[e]
            prod = a_dn @ (inv_hi[links[start:stop] % n_hi] @ a_up)
            owner = links[start:stop] // n_hi
            owners, first = np.unique(owner, return_index=True)
            out[owners] += np.add.reduceat(prod, first, axis=0)
        return out

    def solve(self, r: np.ndarray) -> np.ndarray:
        """``M^-1 r``."""
        r = np.asarray(r)
        y = np.empty(self.shape[0], dtype=complex)
        if self.kind == "block-jacobi":
            for t in range(self.n_levels):
                y[self.index[t]] = _apply_blocks(self.inv[t], r[self.index[t]])
            return y
        # Forward sweep, deepest tier first: (S + A_down) z = r.
        z: list[np.ndarray] = [np.empty(0, dtype=complex)] * self.n_levels
        for t in range(self.n_levels - 1, -1, -1):
            rt = r[self.index[t]]
            if self.down[t] is not None:
                rt = rt - self.down[t] @ z[t + 1]
            z[t] = _apply_blocks(self.inv[t], rt)
        # Backward sweep, from rho: (S + A_up) y = S z.
        prev = z[0]
        y[self.index[0]] = prev
        for t in range(1, self.n_levels):
            if self.up[t] is not None:
                prev = z[t] - _apply_blocks(self.inv[t], self.up[t] @ prev)
            else:
                prev = z[t]
            y[self.index[t]] = prev
        return y


@contextmanager
def _single_thread_blas() -> Iterator[None]:
    # The d^2 x d^2 blocks are far too small to gain from BLAS threads, and a multithreaded BLAS
    # spins on a busy machine (heom.py measured 6x slower sparse solves).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of qpump
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _gmres_tolerance_keyword() -> str:
    """scipy >= 1.12 calls the relative tolerance ``rtol``, older versions ``tol``."""
    return "rtol" if "rtol" in inspect.signature(spla.gmres).parameters else "tol"


def _system_dimension(A: sp.csr_matrix, d: int | None) -> int:
    """``d``, checked against the matrix, or read from its trace row (row 0)."""
    dim = A.shape[0]
    if d is None:
        cols = np.sort(A.indices[A.indptr[0]:A.indptr[1]])
        d = len(cols)
        if d == 0 or not np.array_equal(cols, np.arange(d) * (d + 1)):
            raise InvalidParameterError(
                "d = None: row 0 of the matrix is not the trace condition of a d x d rho (built by "
                "stationary_system); give d")
    d = positive_int("d", d)
    if dim % (d * d):
        raise InvalidParameterError(
            f"d = {d}: the matrix dimension {dim} is not a multiple of d^2 = {d * d}")
    return d


def solve_stationary(
    mat: sp.spmatrix | sp.sparray,
    rhs: np.ndarray,
    *,
    d: int | None = None,
    rtol: float = DEFAULT_RTOL,
    maxiter: int | None = None,
    restart: int = DEFAULT_RESTART,
    preconditioner: str = "block-ilu",
    tiers: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IterativeSolution:
    """Solve the stationary HEOM system iteratively (right-preconditioned restarted GMRES).

    Parameters
    ----------
    mat : scipy sparse matrix, shape (dim, dim)
        The stationary system from :func:`stationary_system` (any sparse format; a
        row-compressed copy is made).
    rhs : numpy.ndarray, shape (dim,)
        Its right-hand side.
    d : int, optional
        Dimension of the system; read from the trace row (row 0) when None.
    rtol : float, optional
        Relative residual ``||A x - b|| / ||b||`` to reach.
    maxiter : int, optional
        Largest number of GMRES iterations in all (default :data:`DEFAULT_MAXITER`).
    restart : int, optional
        GMRES restart length.
    preconditioner : str, optional
        ``"block-ilu"`` (default) or ``"block-jacobi"`` (see :class:`HierarchyPreconditioner`).
    tiers : numpy.ndarray, optional
        Tier of each ADO; read from the matrix when None.
    x0 : numpy.ndarray, optional
        Starting guess (e.g. the solution for a nearby Hamiltonian); zero when None.
    should_stop : callable, optional
        Polled at every GMRES iteration and once per tier of the preconditioner's setup; when it
        returns True the solve stops and raises KeyboardInterrupt (as the Rust core does on an
        interruption). Ctrl-C is obeyed too: the loop runs in Python between short numpy calls.

    Returns
    -------
    IterativeSolution
        The solution with its true relative residual (``<= rtol``), iteration count, timings and
        memory.

    Raises
    ------
    InvalidParameterError
        For bad arguments (shapes, tolerances, a ``d`` that does not fit the matrix).
    IterativeSolveError
        A :class:`~qpump.errors.ComputationError`: the residual did not reach ``rtol`` within
        ``maxiter`` iterations, or stagnated (a restart cycle gained less than 1%), or a pivot
        of the preconditioner is singular. The message names the residual reached.
    KeyboardInterrupt
        When ``should_stop()`` returns True (or on Ctrl-C).
    """
    rtol = positive("rtol", rtol)
    maxiter = DEFAULT_MAXITER if maxiter is None else positive_int("maxiter", maxiter)
    restart = positive_int("restart", restart)
    one_of("preconditioner", preconditioner, PRECONDITIONERS)
    if not sp.issparse(mat) or mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
        raise InvalidParameterError(f"mat = {type(mat).__name__}: give a square scipy sparse matrix")
    dim = mat.shape[0]
    b = np.asarray(rhs, dtype=complex)
    if b.shape != (dim,) or not np.all(np.isfinite(b)):
        raise InvalidParameterError(f"rhs has shape {b.shape}: give {dim} finite numbers")
    if x0 is not None:
        x0 = np.asarray(x0, dtype=complex)
        if x0.shape != (dim,) or not np.all(np.isfinite(x0)):
            raise InvalidParameterError(f"x0 has shape {x0.shape}: give {dim} finite numbers")
    _interrupt_if(should_stop, "before the preconditioner was built")
    started = time.perf_counter()
    with _single_thread_blas():
        A = sp.csr_matrix(mat, dtype=complex)
        A.sum_duplicates()
        d = _system_dimension(A, d)
        precond = HierarchyPreconditioner(A, d, kind=preconditioner, tiers=tiers,
                                          should_stop=should_stop)
        setup_done = time.perf_counter()
        x, residual, iterations, cycles = _gmres(A, b, precond, x0, rtol, maxiter, restart,
                                                 should_stop)
    finished = time.perf_counter()
    matrix_bytes = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    krylov_bytes = (min(restart, maxiter) + 8) * dim * 16
    memory = matrix_bytes + precond.nbytes + max(precond.setup_peak_bytes, krylov_bytes)
    return IterativeSolution(x=x, residual=residual, iterations=iterations,
                             preconditioner=preconditioner, setup_seconds=setup_done - started,
                             solve_seconds=finished - setup_done, memory_bytes=int(memory),
                             restarts=cycles)


def _gmres(A: sp.csr_matrix, b: np.ndarray, precond: HierarchyPreconditioner, x0: np.ndarray | None,
           rtol: float, maxiter: int, restart: int,
           should_stop: Callable[[], bool] | None) -> tuple[np.ndarray, float, int, int]:
    """Restarted GMRES on ``A M^-1``, one scipy cycle at a time, checking the true residual."""
    dim = A.shape[0]
    b_norm = float(np.linalg.norm(b))
    x = np.zeros(dim, dtype=complex) if x0 is None else x0.copy()
    if b_norm == 0.0:
        return x * 0.0, 0.0, 0, 0
    operator = spla.LinearOperator(A.shape, matvec=lambda u: A @ precond.solve(u), dtype=complex)
    tol_keyword = _gmres_tolerance_keyword()
    r = b - A @ x
    residual = float(np.linalg.norm(r)) / b_norm
    iterations = 0
    cycles = 0

    def count(_: float) -> None:
        nonlocal iterations
        iterations += 1
        _interrupt_if(should_stop, f"after {iterations} GMRES iterations (relative residual "
                                   f"{residual:.3g} at the last restart)")

    while residual > rtol:
        if not math.isfinite(residual):
            raise IterativeSolveError(
                f"the iterative steady-state solve diverged: the relative residual is {residual} "
                f"after {iterations} GMRES iterations; use the direct solver",
                residual=residual, iterations=iterations, rtol=rtol)
        if iterations >= maxiter:
            raise IterativeSolveError(
                f"the iterative steady-state solve did not converge: relative residual "
                f"||A x - b|| / ||b|| = {residual:.3g} after {iterations} GMRES iterations "
                f"(maxiter = {maxiter}), above rtol = {rtol:g}; raise maxiter or use the direct solver",
                residual=residual, iterations=iterations, rtol=rtol)
        budget = min(restart, maxiter - iterations)
        # Half of the target for the cycle: its own residual estimate can be a little optimistic.
        kwargs = {tol_keyword: 0.0, "atol": 0.5 * rtol * b_norm}
        u, _ = spla.gmres(operator, r, restart=budget, maxiter=1, callback=count,
                          callback_type="pr_norm", **kwargs)
        cycles += 1
        x = x + precond.solve(u)
        r = b - A @ x
        previous, residual = residual, float(np.linalg.norm(r)) / b_norm
        if budget == restart and rtol < residual and residual > _STAGNATION * previous:
            raise IterativeSolveError(
                f"the iterative steady-state solve stagnated: relative residual ||A x - b|| / ||b|| "
                f"= {residual:.3g} after {iterations} GMRES iterations (a cycle of {restart} gained "
                f"less than {1 - _STAGNATION:.0%}), above rtol = {rtol:g}; the generator may have no "
                "unique steady state or the coupling is too strong for the preconditioner: raise "
                "restart or use the direct solver",
                residual=residual, iterations=iterations, rtol=rtol)
    return x, residual, iterations, cycles


def _depth_of(n_ados: int, n_exponents: int) -> int:
    """The smallest depth whose hierarchy of ``n_exponents`` holds ``n_ados`` ADOs."""
    depth = 0
    while math.comb(n_exponents + depth, depth) < n_ados:
        depth += 1
    return depth


def iterative_memory_parts(n_ados: int, d: int, n_exponents: int, nnz: int | None = None, *,
                           restart: int = DEFAULT_RESTART) -> dict[str, int]:
    """Estimated peak memory of an iterative steady state, by part, before anything is allocated.

    Parameters
    ----------
    n_ados, d, n_exponents : int
        The hierarchy: number of ADOs, system dimension, exponents over all baths.
    nnz : int, optional
        Stored entries of the stationary matrix (``mat.nnz``), if known. When None, the count of
        ``steady_state_memory_bytes`` is used, ``d^3 (n_ados + n_links)`` with
        ``n_links = K C(K + D - 1, D - 1)`` and the depth ``D`` that gives ``n_ados``.
    restart : int, optional
        GMRES restart length.

    Returns
    -------
    dict
        ``"generator triplets"`` (the core's COO output and the copies :func:`stationary_system`
        makes, 33 bytes per triplet, about ``1.3 nnz`` triplets), ``"sparse matrix"`` (the CSC
        matrix, its CSR copy and the conversion's transient, 60 bytes per entry),
        ``"preconditioner"`` (a ``d^2 x d^2`` complex inverse per ADO, the pivots of the largest
        tier during their inversion and a copy of the tier couplings, 20 bytes per entry) and
        ``"krylov"`` (``restart + 8`` vectors of ``n_ados d^2`` complex numbers).
    """
    m = d * d
    dim = n_ados * m
    if nnz is None:
        depth = _depth_of(n_ados, n_exponents)
        links = n_exponents * math.comb(n_exponents + depth - 1, depth - 1) if depth > 0 else 0
        nnz = d**3 * (n_ados + links)
    return {
        "generator triplets": int(33 * 1.3 * nnz),
        "sparse matrix": int(60 * nnz),
        "preconditioner": int(2 * n_ados * m * m * 16 + 20 * nnz + 5 * _CHUNK_BYTES),
        "krylov": int((restart + 8) * dim * 16),
    }


def iterative_memory_bytes(n_ados: int, d: int, n_exponents: int, nnz: int | None = None, *,
                           restart: int = DEFAULT_RESTART) -> int:
    """Estimated peak memory of :func:`stationary_system` plus :func:`solve_stationary`, in bytes.

    The sum of :func:`iterative_memory_parts` (see there). The counterpart of
    ``qpump.heom.steady_state_memory_bytes`` (whose sparse LU it replaces); like it, it does not
    include the process's current memory.
    """
    return sum(iterative_memory_parts(n_ados, d, n_exponents, nnz, restart=restart).values())
