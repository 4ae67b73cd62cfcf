"""gradcheck's report: a row per parameter leaf and the input, the verdict, and the table
``str(report)`` prints with where a failed check's wrong gradient (or a NaN) starts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GradcheckRow:
    """One parameter leaf (or the input, ``layer_name="input"``, ``leaf="dx"``): how far the
    manual gradient is from autodiff and from finite differences.

    Attributes:
        layer: The layer's index (-1 for the input row).
        layer_name: The layer's name in the network (``dense_0``...), or ``"input"``.
        leaf: The leaf's path inside the layer's params (``w``, ``b``...), or ``"dx"``.
        shape: The leaf's shape.
        manual_vs_autodiff: The relative error of the manual gradient against ``jax.grad``.
        manual_vs_fd: The relative error against central finite differences (over the
            entries not at a kink).
        fd_entries: How many entries were finite-differenced.
        passed: Both errors within their tolerances.
        fd_kinks: How many of those entries sit at a kink of the loss (relu at 0...), where
            the one-sided slopes differ and finite differences have no single answer: each
            passes between the two slopes or equal to autodiff's (see :func:`gradcheck`); or
            within a step of one, judged by the slope of the side without it.
        failed_at_kinks: The row fails on entries at kinks alone (outside the one-sided slopes
            and off autodiff's choice): a value there may be another valid choice than jax's,
            which several units on one kink sum outside the slopes.
    """

    layer: int
    layer_name: str
    leaf: str
    shape: tuple[int, ...]
    manual_vs_autodiff: float
    manual_vs_fd: float
    fd_entries: int
    passed: bool
    fd_kinks: int = 0
    failed_at_kinks: bool = False


@dataclass(frozen=True)
class GradcheckReport:
    """Result of :func:`gradcheck`. ``passed`` is the overall verdict; ``str(report)`` is a table.

    An error is ``max|a - b| / max(max|a|, max|b|, floor)`` over a leaf: relative to the leaf's
    scale, which stays meaningful where single entries are (near) 0, and to an absolute floor
    where the whole leaf is (near) 0, as ``atol`` does in ``torch.autograd.gradcheck`` (against
    finite differences, the leaf's differences at ``eps`` count in its scale besides those the
    check settled on, so that each entry is judged at one scale). The
    floors are stated in the report: ``floor_autodiff`` is 1e-3 of the largest gradient entry of
    the whole check; ``floor_fd`` the same, or finite differences' own rounding
    (``10 eps_float64 max(|loss|, 1) / (h rtol_fd)``) if larger.

    Attributes:
        rows: One :class:`GradcheckRow` per parameter leaf, then the input's.
        loss_value: The loss at the checked point (float64).
        rtol_autodiff: The tolerance against autodiff.
        rtol_fd: The tolerance against finite differences.
        floor_autodiff: The absolute floor of the errors against autodiff.
        floor_fd: The absolute floor of the errors against finite differences.
        at_fault: Where a failed check's wrong gradient starts: each piece (a layer by its
            name, ``outer/inner`` inside a nested network, or ``"loss"``) whose own derivative
            is off from ``jax.vjp`` of its own forward by more than ``rtol_autodiff`` (relative
            to its scale, with ``floor_autodiff``; a NaN or inf the reference has not is
            ``inf``) and whose mistake can explain a failed row, with that error. Each piece is
            checked alone, at its own input and given autodiff's cotangent of its output, so a
            wrong ``dx`` of a middle layer is named there, not in the layers before it whose
            rows it spoils. At a kink (relu at an exact 0) a right layer whose derivative there
            is another valid choice than ``jax.vjp``'s may be named beside the culprit below it.
            Empty when the check passed; None when a piece could not be differentiated alone,
            or when the forward pass is not finite (``non_finite_from``): no culprit named.
        non_finite_from: Where the forward pass stops being finite, when the loss or a gradient
            at the checked point holds a NaN or inf: ``"input"`` if ``x`` holds one; else the
            first piece (named as in ``at_fault``) whose output holds one from a finite input
            (its forward, or its params); else ``"y"`` if the targets hold one; else ``"loss"``
            if the loss of a finite prediction is not finite (a log of a negative prediction);
            else ``"params"`` if a param holds one that the forward absorbed (tanh of an inf
            weight: finite outputs, 0 * inf gradients). None where all of them are finite (a
            NaN or inf in a gradient alone is then a backward's, named in ``at_fault``). A
            network that is not an :class:`fnn.Network` is not looked into: ``"params or y"``.
        cast_from: The dtypes narrower than float64 (``float32``, ``float16``, ``bfloat16``)
            of the params and ``x`` that the check cast to float64, as ``("params float32",)``;
            empty where none was. It judges the derivatives' formulas, not that dtype's
            arithmetic: an overflow there (a NaN gradient from :func:`value_and_grad` in
            float32, an ``exp`` of a large input in a backward of yours) does not show, and the
            report says so in a note (not a failure; torch's gradcheck warns alike).
        not_float64: Where the check failed, the layers whose output at the checked point is
            floating but not float64 (``"f32_0 (float32)"``), as a forward that casts to a fixed
            ``float32`` gives: finite differences through it carry float32's rounding, which can
            fail a right gradient. Empty where the check passed.
    """

    rows: tuple[GradcheckRow, ...]
    loss_value: float
    rtol_autodiff: float
    rtol_fd: float
    floor_autodiff: float = 0.0
    floor_fd: float = 0.0
    at_fault: tuple[tuple[str, float], ...] | None = ()
    non_finite_from: str | None = None
    cast_from: tuple[str, ...] = ()
    not_float64: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True if every row passed (``bool(report)`` is the same).

        Returns:
            The verdict.
        """
        return all(r.passed for r in self.rows)

    @property
    def max_error_autodiff(self) -> float:
        """The largest relative error against autodiff over the rows.

        Returns:
            The error (0 without rows).
        """
        return float(np.max([r.manual_vs_autodiff for r in self.rows])) if self.rows else 0.0  # NaN shows

    @property
    def max_error_fd(self) -> float:
        """The largest relative error against finite differences over the rows.

        Returns:
            The error (0 without rows).
        """
        return float(np.max([r.manual_vs_fd for r in self.rows])) if self.rows else 0.0

    @property
    def failed_layers(self) -> list[str]:
        """The layers where a row failed.

        Returns:
            Their names, sorted (``"input"`` for the input row).
        """
        return sorted({r.layer_name for r in self.rows if not r.passed})

    def __bool__(self) -> bool:
        return self.passed

    def _why_still(self) -> str:
        """Why rows fail where every piece agrees with autodiff: NaN or inf alike, or finite
        differences that cross into NaN or inf (an error of NaN compared nothing)."""
        if any(np.isnan(r.manual_vs_autodiff) for r in self.rows):
            return ", NaN or inf alike (the derivative is not finite at this point)"
        if any(np.isnan(r.manual_vs_fd) for r in self.rows):
            return "; the loss is NaN or inf within eps of this point (finite differences cannot judge there)"
        if all(r.manual_vs_autodiff <= self.rtol_autodiff for r in self.rows if not r.passed):
            # The chain rule itself (jax.grad too) differs from the slopes here: a kink's
            # one-sided slopes that cancel downstream hide it from the kink test, and a clamp
            # narrower than eps is stepped over.
            return (
                ", and the failing entries equal jax.grad's: the chain rule itself is not the derivative at "
                "this point (a unit's input exactly on an activation's kink, e.g. zero biases and an all-zero "
                "input row, whose one-sided slopes cancel downstream; or a loss clamp narrower than eps, "
                "cosine_similarity of a prediction within 1e-7 of 0); judge the gradient at other params or "
                "data, or with a smaller eps"
            )
        return ""

    def __str__(self) -> str:
        head = ("layer", "param", "shape", "manual vs autodiff", "manual vs FD", "FD entries", "")
        body = [
            (
                r.layer_name,
                r.leaf,
                "x".join(map(str, r.shape)) or "()",
                f"{r.manual_vs_autodiff:.2e}",
                f"{r.manual_vs_fd:.2e}",
                f"{r.fd_entries}" + (f" ({r.fd_kinks} at kinks)" if r.fd_kinks else ""),
                "ok" if r.passed else "FAIL",
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
        fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
        verdict = "PASSED" if self.passed else f"FAILED in {', '.join(self.failed_layers)}"
        if self.non_finite_from is not None:
            start = self.non_finite_from
            starts = f"the forward pass is not finite from {start} on (NaN or inf in its output, its input finite)"
            verdict += f"; {_NON_FINITE.get(start, starts)}, so no gradient can be judged"
        elif not self.passed and self.at_fault is not None:
            where = [f"{name} ({error:.2e} from {_REFERENCE_OF.get(name, _VJP)})" for name, error in self.at_fault]
            if where and all(r.failed_at_kinks for r in self.rows if not r.passed):
                verdict += _AT_KINKS.format(", ".join(where))
            else:
                verdict += (
                    "; the wrong derivative starts in " + ", ".join(where)
                    if where
                    else "; every layer's backward and the loss's gradient agree with jax.vjp alone" + self._why_still()
                )
        if not self.passed and self.not_float64:
            verdict += (
                f"; the output of {', '.join(self.not_float64)} is not float64, so the differences through it "
                "carry its rounding (a forward that casts to a fixed dtype: cast with x.dtype instead)"
            )
        lines.append(
            f"gradcheck {verdict}: max relative error {self.max_error_autodiff:.2e} vs autodiff "
            f"(rtol {self.rtol_autodiff:g}), {self.max_error_fd:.2e} vs finite differences "
            f"(rtol {self.rtol_fd:g}); loss {self.loss_value:.6g}"
        )
        lines.append(
            f"(errors relative to max(|leaf|, floor); floor {self.floor_autodiff:.1e} vs autodiff, "
            f"{self.floor_fd:.1e} vs finite differences; the input gradient is the row 'input dx')"
        )
        if self.cast_from:
            what = " and ".join(self.cast_from)
            lines.append(
                f"(note: {what} cast to float64 for this check, which judges the derivatives, not "
                "that dtype's arithmetic: an overflow there (a NaN gradient) does not show; compare "
                "fnn.value_and_grad in the params' own dtype)"
            )
        if any(r.fd_kinks for r in self.rows):
            lines.append(
                "(entries at kinks: the loss's one-sided slopes differ there; such an entry passes "
                "between them or equal to autodiff's, unless a piece that feeds it is off jax.vjp where "
                "its forward is smooth)"
            )
        return "\n".join(lines)


_NON_FINITE = {
    "input": "x holds NaN or inf",
    "y": "y holds NaN or inf",
    "loss": "the loss is NaN or inf at a finite prediction",
    "params": "the params hold NaN or inf (the forward absorbed them: tanh of inf)",
    "params or y": "the params or y hold NaN or inf",
}
_VJP = "jax.vjp of its forward"
# Several units on one kink (zero weights and biases) sum their choices outside the loss's one-sided
# slopes, and jax's choice differs from another valid one: neither reference can judge the value.
_AT_KINKS = (
    "; the failing entries all sit exactly on kinks of the loss, outside its one-sided slopes: {} "
    "differs from jax's choice of slope at the kink, a wrong derivative or another valid choice "
    "(relu'(0) may be 0, 1/2 or 1: jax.nn.relu takes 0, jnp.maximum 1/2) that, summed over several "
    "units on one kink, no finite difference can confirm; judge it where no unit's input sits exactly "
    "on a kink"
)
_REFERENCE_OF = {"loss": "jax.grad of its function"}
