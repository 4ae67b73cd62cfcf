"""gradcheck's judgement of each finite-differenced entry: Richardson's second look, the one-sided
slopes at a kink, smaller steps for every entry still failing (a kink within the step, a loss
that curves within it), and larger steps where the loss's own rounding swamps the difference."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

# The entries differenced per step of ``shifted``'s loop (``lax.map``'s batch).
FD_BATCH = 128
# The second look runs at the first pass's shape (no other compile) up to this many entries.
SHARE_UP_TO = 8 * FD_BATCH
# The one-sided look's steps, eps / k: down to ~6e-11 for eps 1e-6, below the residual of a
# float32 tie of mae seen in float64 (~1e-8) and well inside a bend of width ~1e-6 (LayerNorm's
# sqrt(epsilon) at constant rows for epsilon 1e-12, whose one-sided slopes at eps look like a
# kink's), where the rounding of O(1) terms (~1e-16) still moves a slope by only ~2e-6.
_SMALLER = (4, 16, 64, 256, 1024, 4096, 16384)
# The noise look's steps, eps * k: the rounding of log(1 - c) at a saturated sigmoid (~1e-9
# at c = 1 - 1e-7) needs a step of ~1e-2 to judge a slope to 1e-6.
_LARGER = (4, 16, 64, 256, 1024, 4096, 16384, 65536)
# (left, right): a one-sided difference's sign on each side
_SIGN = np.array([-1.0, 1.0])
# The entries the larger steps look at first.
_FIRST_NOISY = 8


def padded(idx: np.ndarray) -> np.ndarray:
    """``idx`` repeated up to a power of two (at least 8) or, past one batch, a whole number of
    batches: ``lax.map`` compiles a remainder that is not a whole batch as a second copy of the
    vmapped forward (``shifted`` compiled 25-40 % slower for it), and a few shapes of the
    program serve the first pass and the second look alike."""
    n = idx.size
    size = max(8, 1 << (n - 1).bit_length()) if n <= FD_BATCH else -(-n // FD_BATCH) * FD_BATCH
    return np.resize(idx, size)


def _off_hull(m: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """How far each ``m`` lies outside its one-sided slopes ``(low, high)`` (0 between them;
    NaN on rows without slopes)."""
    return np.maximum(np.maximum(slopes[:, 0] - m, m - slopes[:, 1]), 0.0)


def _passes(m: np.ndarray, fd: np.ndarray, slopes: np.ndarray, tol: np.ndarray, agrees: np.ndarray) -> np.ndarray:
    """The entries that pass as :func:`judge_leaf` judges them: at a kink between the slopes or
    equal to an independent autodiff's (``agrees``), elsewhere within ``tol`` of ``fd``."""
    kink = ~np.isnan(slopes[:, 0])
    return np.where(kink, (_off_hull(m, slopes) <= tol) | agrees, np.abs(m - fd) <= tol)


def second_look(
    difference: Callable, all_idx: np.ndarray, out: np.ndarray, eps: float, f0: np.float64, f_h: np.ndarray,
    fd: np.ndarray, tol: np.ndarray, m: np.ndarray, agrees: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """The entries ``out`` (outside tolerance of either reference) differenced again with the
    step halved: ``fd[out]`` becomes Richardson's value, and the result holds the one-sided
    slopes ``(low, high)`` of the entries that sit at a kink (NaN rows elsewhere). Those that
    still fail are looked at with smaller steps (:func:`_one_sided`): both sides resolved and
    alike, a smooth loss, trusted (the gradient is wrong); then, where the small steps scatter
    as rounding does, larger ones (:func:`_larger`), whose value counts only where it is
    consistent with the small steps (:func:`_consistent`). ``m`` are the manual entries,
    ``agrees`` where they equal an independent autodiff's."""
    slopes = np.full((fd.size, 2), np.nan)
    if not out.size:
        return slopes
    first = padded(all_idx).size

    def at_shape(size: int) -> Callable:
        """``at(rows, h)``: the loss at ``out[rows]`` moved by ``+h`` and ``-h``, run at ``size``."""

        def at(rows: np.ndarray, h: float) -> np.ndarray:
            with jax.enable_x64(True):
                return difference(np.resize(all_idx[out[rows]], size), h)[1][: rows.size]

        return at

    def later(rows: np.ndarray) -> Callable:
        """The later looks' ``at`` for ``rows`` and their subsets: the first pass's shape while
        it is small, else theirs (a compile, ~0.3 s for a 256-wide MLP, against ~2 s per step
        of 4096 entries)."""
        return at_shape(first if first <= FD_BATCH else padded(rows).size)

    # the first pass's program, compiled already, at most the first pass's own cost again (less
    # than a compile when small)
    at = at_shape(first if first <= SHARE_UP_TO else padded(out).size)
    f_h, half = f_h[out], at(np.arange(out.size), eps / 2)
    # Richardson: (4 D(h/2) - D(h)) / 3 cancels central differences' h^2 term; where the loss's
    # second derivative jumps (softsign at 0) the error is O(h) and this cuts it to a third
    fd[out] = (4 * (half[:, 0] - half[:, 1]) / eps - fd[out]) / 3
    # A kink within the step: the one-sided slopes differ by a jump that does not shrink with
    # the step (a smooth loss's differ by ~f'' h).
    right, left = (half[:, 0] - f0) / (eps / 2), (f0 - half[:, 1]) / (eps / 2)
    jump_h = (f_h[:, 0] - 2 * f0 + f_h[:, 1]) / eps
    kink = (np.abs(jump_h) > tol[out]) & (np.abs(right - left) >= 0.75 * np.abs(jump_h))
    # each side's slope, its O(h) term cancelled: 2 S(h/2) - S(h)
    sides = np.stack([2 * left - (f0 - f_h[:, 1]) / eps, 2 * right - (f_h[:, 0] - f0) / eps], axis=1)
    slopes[out[kink]] = np.sort(sides[kink], axis=1)
    t, richardson = tol[out], fd[out].copy()
    # every entry still failing gets the one-sided look: smaller steps resolve a loss that is
    # smooth but curves within the step (|r|^1.5 at r = 1e-6) as well as kinks within it
    rows = np.flatnonzero(~_passes(m[out], richardson, slopes[out], t, agrees[out]))
    if not rows.size:
        return slopes
    # each side's slopes at eps and eps / 2, the first of the history the noise look checks against
    looked = [(eps, _SIGN * (f_h[rows, ::-1] - f0) / eps), (eps / 2, _SIGN * (half[rows, ::-1] - f0) / (eps / 2))]
    value, scatter = _one_sided(later(rows), rows, eps, f0, (half[rows], sides[rows]), t[rows], m[out[rows]], looked)
    _record(fd, slopes, out[rows], value, m[out[rows]], t[rows])
    # Both sides resolved and alike: a smooth loss, trusted (a wrong gradient fails). Neither side
    # settled, or both alike, or one alone, but the differences grew or stalled as the step shrank
    # (1 - c of a saturated sigmoid stays put below a step of ~1e-9; rounding in whole float steps
    # can make two steps of one side agree by chance, on a wrong slope): the loss's own rounding,
    # judged at larger steps.
    one = np.isnan(value).any(axis=1) & ~np.isnan(value).all(axis=1)
    alike = np.abs(value[:, 1] - value[:, 0]) <= t[rows]
    unsettled = np.isnan(value).all(axis=1) | (scatter & (alike | one))
    still = ~_passes(m[out[rows]], fd[out[rows]], slopes[out[rows]], t[rows], agrees[out[rows]])
    noisy = np.flatnonzero(unsettled & still & ~kink[rows])
    # The entries likeliest to be the loss's rounding (nearest m) first: if none of them passes
    # at larger steps, the others (a wrong gradient's, all of a leaf) are not looked at.
    noisy = noisy[np.argsort(np.abs(m[out[rows[noisy]]] - richardson[rows[noisy]]) / t[rows[noisy]], kind="stable")]
    for part in (noisy[:_FIRST_NOISY], noisy[_FIRST_NOISY:]):
        if not part.size:
            break
        at_out = rows[part]
        d_eps = (f_h[at_out, 0] - f_h[at_out, 1]) / (2 * eps)
        best, agreed = _larger(later(at_out), at_out, eps, d_eps, richardson[at_out], t[at_out], m[out[at_out]])
        agreed &= _consistent(best, [(h, s[part]) for h, s in looked], eps, t[at_out])
        fd[out[at_out[agreed]]] = best[agreed]
        if not np.any(agreed & (np.abs(m[out[at_out]] - best) <= t[at_out])):
            break
    return slopes


def _one_sided(
    at: Callable, rows: np.ndarray, eps: float, f0: np.float64, firsts: tuple, tol: np.ndarray, m: np.ndarray,
    looked: list,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each side's slope ``(left, right)`` of the entries ``rows``, NaN where that side is not
    smooth, and where the differences look like the loss's rounding rather than its shape: the
    one-sided differences ``S(h) = ±(L(p ± h e_i) - L(p)) / h`` at steps from eps down
    (:data:`_SMALLER`, each appended to ``looked`` as ``(h, S)``), each pair of steps
    Richardson's ``R = (r S(h) - S(r h)) / (r - 1)`` and each pair of those again (its ``h^2``
    term cancelled too); a side is smooth where two such values agree within ``tol`` (a kink
    within the step on that side moves them apart, by a part of the jump that grows as the step
    shrinks to it). Rounding shows as ``R`` moving more from step to step as the step shrinks
    (its error grows as 1 / h), or as a side that no longer moves at all (``L(p ± h e_i) ==
    L(p)``). An entry is done when a smooth side equals ``m`` (a kink within the step on the other
    side, or exactly at the point with ``m`` one of its slopes), or once both sides are smooth
    and apart (a kink at the point); smooth and alike, it goes on to see them stay put."""
    f_prev, sides = firsts
    h_prev, n = eps / 2, rows.size
    value, active = np.full((n, 2), np.nan), np.ones(n, bool)
    scatter, moved, r2_prev, h_pp = np.zeros(n, bool), np.full((n, 2), np.inf), np.full((n, 2), np.nan), eps
    for k in _SMALLER:
        h = eps / k
        f = np.full((n, 2), np.nan)
        f[active] = at(rows[active], h)
        r = h_prev / h
        # the one-sided differences (left, right) at h and at h_prev
        s, s_prev = _SIGN * (f[:, ::-1] - f0) / h, _SIGN * (f_prev[:, ::-1] - f0) / h_prev
        looked.append((h, s))
        new = (r * s - s_prev) / (r - 1)
        # R's error is -b h h_prev for S = g + a h + b h^2: the pair of R cancels it
        q = h_pp / h
        r2 = (q * new - sides) / (q - 1)
        step = np.abs(new - sides)
        with np.errstate(invalid="ignore"):
            scatter |= active & np.any(((step > tol[:, None]) & (step > 2 * moved)) | (s == 0), axis=1)
        smooth = (step <= tol[:, None]) | (np.abs(r2 - r2_prev) <= tol[:, None])
        # a side's first settled value stands: the steps after it only watch it stay put
        value = np.where(smooth & np.isnan(value), np.where(step <= tol[:, None], new, r2), value)
        hit = np.any(smooth & (np.abs(value - m[:, None]) <= tol[:, None]), axis=1)
        # both sides smooth and apart: a kink at the point, judged by them; alike but not m: the
        # gradient is wrong, unless the smaller steps move them (rounding), so they go on
        both = ~np.isnan(value).any(axis=1)
        active &= ~(hit | (both & (np.abs(value[:, 1] - value[:, 0]) > tol)))
        if not active.any():
            break
        f_prev, h_pp, h_prev, sides, r2_prev, moved = f, h_prev, h, new, r2, step
    return value, scatter


def _consistent(best: np.ndarray, looked: list, eps: float, tol: np.ndarray) -> np.ndarray:
    """Where a larger step's ``best`` is the slope the smaller steps' differences ``looked``
    (``(h, S)``, S each side's one-sided difference) scatter about as rounding does: their
    distance from it, times the step, at steps from eps / 4 down bounds the rounding ``delta``,
    and at eps and eps / 2 each lies within ``tol + 4 delta / h`` of it. A smooth loss's slope
    that the larger steps average away (a fast wiggle ``sin(w p)`` the small steps resolve)
    leaves them far from ``best`` where the rounding bound is small."""
    hs = np.array([h for h, _ in looked])
    dev = np.abs(np.stack([s for _, s in looked]) - best[None, :, None])
    with np.errstate(invalid="ignore"):
        small = hs <= eps / 4
        delta = np.nanmax(np.where(np.isnan(dev[small]), 0.0, dev[small] * hs[small, None, None]), axis=(0, 2))
        bound = tol[None, :, None] + 4 * delta[None, :, None] / hs[~small, None, None]
        return ~np.any(dev[~small] > bound, axis=(0, 2))


def _record(
    fd: np.ndarray, slopes: np.ndarray, idx: np.ndarray, value: np.ndarray, m: np.ndarray, tol: np.ndarray
) -> None:
    """The one-sided look's verdict on the entries ``idx``: both sides smooth and alike, a smooth
    loss (``fd`` their value nearer ``m``); both smooth and apart, a kink at the point (the
    slopes); one side smooth and equal to ``m``, a kink within the step on the other (that
    side's slope alone); one side smooth and not ``m``, ``fd`` that side's slope."""
    both = ~np.isnan(value).any(axis=1)
    alike = both & (np.abs(value[:, 1] - value[:, 0]) <= tol)
    nearer = np.take_along_axis(value, np.argmin(np.abs(value - m[:, None]), axis=1)[:, None], 1)[:, 0]
    fd[idx[alike]] = nearer[alike]
    slopes[idx[alike]] = np.nan
    slopes[idx[both & ~alike]] = np.sort(value[both & ~alike], axis=1)
    one = np.isnan(value).any(axis=1) & ~np.isnan(value).all(axis=1)
    smooth_side = np.nanmax(np.where(one[:, None], value, 0.0), axis=1)
    # counted as a kink only where m equals that side's slope; elsewhere the other side may as
    # well be the loss's rounding (a saturated sigmoid's), and the entry fails against the slope
    at_kink = one & (np.abs(smooth_side - m) <= tol)
    slopes[idx[at_kink]] = smooth_side[at_kink, None]
    fd[idx[one & ~at_kink]] = smooth_side[one & ~at_kink]


def _larger(
    at: Callable, rows: np.ndarray, eps: float, d_eps: np.ndarray, central: np.ndarray, tol: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The central differences of the entries ``rows`` at steps from eps up (:data:`_LARGER`),
    for a loss whose own rounding swamps the difference at eps (its error falls as 1 / h):
    each pair of steps Richardson's ``(r^2 D(h) - D(r h)) / (r^2 - 1)``. Returns, with where
    one was found, the first that agrees with the pair below within ``tol`` and equals ``m``,
    or where none does, the last that agrees. ``d_eps`` is ``D(eps)``, ``central``
    Richardson's value of eps and eps/2."""
    best, agreed, active = central.copy(), np.zeros(rows.size, bool), np.ones(rows.size, bool)
    h_prev, d_prev = eps, d_eps
    for k in _LARGER:
        h = eps * k
        f = np.full((rows.size, 2), np.nan)
        f[active] = at(rows[active], h)
        d = (f[:, 0] - f[:, 1]) / (2 * h)
        r2 = (h / h_prev) ** 2
        new = (r2 * d_prev - d) / (r2 - 1)
        agree = active & (np.abs(new - central) <= tol)
        best[agree], agreed[agree] = new[agree], True
        active &= ~(agree & (np.abs(new - m) <= tol))
        if not active.any():
            break
        h_prev, d_prev, central = h, d, new
    return best, agreed


def between_slopes(m: np.ndarray, slopes: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """The entries at a kink whose ``m`` lies between its one-sided slopes (within ``tol``)."""
    return ~np.isnan(slopes[:, 0]) & (np.where(np.isnan(slopes[:, 0]), np.inf, _off_hull(m, slopes)) <= tol)


def autodiff_scale(manual: np.ndarray, auto: np.ndarray, floor_autodiff: float) -> float:
    """The scale of a leaf's error against autodiff: its largest entry of either, or the floor."""
    return max(np.max(np.abs(manual), initial=0.0), np.max(np.abs(auto), initial=0.0), floor_autodiff)


def judge_leaf(
    manual: np.ndarray,
    auto: np.ndarray,
    idx: np.ndarray,
    fd: np.ndarray,
    slopes: np.ndarray,
    tol: np.ndarray,
    floor_autodiff: float,
    floor_fd: float,
    rtol_autodiff: float,
    rtol_fd: float,
    agrees: np.ndarray,
    exempt: np.ndarray | None = None,
) -> tuple[float, float, int, bool]:
    """A leaf's ``(error vs autodiff, error vs finite differences, entries at kinks, whether
    it fails on entries at kinks alone)``.

    ``fd`` are the differences of the entries ``idx``, ``slopes`` their one-sided slopes ``(low,
    high)`` where they sit at a kink (NaN rows elsewhere; ``low == high`` where a kink within
    the step leaves one side's slope alone). At a kink, a slope between the two one-sided ones
    is a valid choice (jax.nn.relu takes 0 at 0, jnp.maximum 1/2): an entry there passes if it
    lies between them (within ``tol``) or equals autodiff's where autodiff is independent of the
    hand-written derivatives (``agrees``, per entry of ``idx``, as gradcheck judged it: several
    units kinked at once can sum their choices outside the two slopes); where it lies between
    them it is left out of the autodiff error (unless not ``exempt``, per entry of ``idx``: a
    piece's derivative is off where that piece is smooth), where it equals an independent
    autodiff's out of the finite-difference error, and otherwise it counts in both.
    """
    m = manual[idx]
    kink = ~np.isnan(slopes[:, 0])
    off_hull = np.where(kink, _off_hull(m, slopes), 0.0)
    in_hull = kink & (off_hull <= tol)
    auto_scale = autodiff_scale(manual, auto, floor_autodiff)
    auto_diff = np.abs(manual - auto)
    auto_diff[idx[in_hull & (True if exempt is None else exempt)]] = 0.0
    # where the loss is smooth and the differences agree with the manual entry but not with
    # autodiff's, jax.grad is the one that is wrong (where(x == 0, 0, x) routes the derivative
    # of the identity to the constant branch at exactly 0): it does not fail the entry
    auto_diff[idx[~kink & (np.abs(m - fd) <= tol) & (np.abs(auto[idx] - fd) > tol)]] = 0.0
    e_auto = float(np.max(auto_diff, initial=0.0) / auto_scale) if auto_scale else 0.0
    fd_diff = np.where(kink, np.where(agrees, 0.0, off_hull), np.abs(m - fd))
    # the scale ``tol`` was taken at (the first pass's differences) too, so that an entry within
    # its tolerance stays within the row's
    fd_scale = max(
        np.max(np.abs(m), initial=0.0),
        np.max(np.abs(fd), initial=0.0),
        floor_fd,
        tol.max(initial=0.0) / rtol_fd if rtol_fd > 0 else 0.0,
    )
    e_fd = float(np.max(fd_diff, initial=0.0) / fd_scale) if fd_scale else 0.0
    # the row's errors without the entries at kinks that fail: within tolerance, they alone fail it
    failing = kink & ~in_hull & ~agrees
    auto_diff[idx[failing]] = 0.0
    rest_auto = float(np.max(auto_diff, initial=0.0) / auto_scale) if auto_scale else 0.0
    rest_fd = float(np.max(np.where(failing, 0.0, fd_diff), initial=0.0) / fd_scale) if fd_scale else 0.0
    at_kinks_only = bool(failing.any()) and rest_auto <= rtol_autodiff and rest_fd <= rtol_fd
    return e_auto, e_fd, int(np.sum(kink)), at_kinks_only
