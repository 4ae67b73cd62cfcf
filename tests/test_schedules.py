"""Schedules against closed forms written in plain Python (float64)."""

from __future__ import annotations

import math

import chex
import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fnn.schedules as S

STEPS = np.arange(0, 40)


def _values(schedule, steps=STEPS) -> np.ndarray:
    """The schedule on a vector of steps; the same values one scalar step at a time (both in one
    compiled program: op by op, each schedule would compile a program per operation)."""
    picked = (0, int(steps[len(steps) // 2]), int(steps[-1]))
    vector, scalars = jax.jit(lambda v, ss: (schedule(v), [schedule(s) for s in ss]))(
        np.asarray(steps, np.int32), [np.int32(s) for s in picked]
    )
    vector = np.asarray(vector)
    for s, value in zip(picked, scalars, strict=True):
        np.testing.assert_allclose(value, vector[list(steps).index(s)], rtol=1e-13, atol=1e-16)
    return vector


def _one_cycle_torch(step, total, peak, pct_start, div, final_div):
    """torch.optim.lr_scheduler.OneCycleLR.get_lr, anneal_strategy='cos', three_phase=False."""
    initial = peak / div
    minimum = initial / final_div
    phases = [(float(pct_start * total) - 1, initial, peak), (total - 1, peak, minimum)]
    start_step = 0
    for i, (end_step, start_lr, end_lr) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
        start_step = end_step


CASES = [
    ("constant", S.constant(0.3), lambda k: 0.3),
    ("exponential", S.exponential_decay(0.1, 5, 0.5), lambda k: 0.1 * 0.5 ** (k / 5)),
    ("exponential-staircase", S.exponential_decay(0.1, 5, 0.5, staircase=True), lambda k: 0.1 * 0.5 ** (k // 5)),
    (
        "exponential-begin-end",
        S.exponential_decay(0.1, 4, 0.5, transition_begin=10, end_value=0.01),
        lambda k: max(0.1 * 0.5 ** (max(k - 10, 0) / 4), 0.01),
    ),
    (
        "exponential-growth-end",
        S.exponential_decay(0.1, 4, 2.0, end_value=0.5),
        lambda k: min(0.1 * 2.0 ** (k / 4), 0.5),
    ),
    (
        "piecewise",
        S.piecewise_constant([5, 12], [1.0, 0.5, 0.1]),
        lambda k: 1.0 if k <= 5 else (0.5 if k <= 12 else 0.1),
    ),
    ("cosine", S.cosine_decay(0.2, 30), lambda k: 0.2 * 0.5 * (1 + math.cos(math.pi * min(k, 30) / 30))),
    (
        "cosine-alpha",
        S.cosine_decay(0.2, 30, alpha=0.1),
        lambda k: 0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(k, 30) / 30)) + 0.1),
    ),
    (
        "warmup-cosine",
        S.warmup_cosine_decay(0.0, 1.0, 5, 25, end_value=0.05),
        lambda k: k / 5 if k < 5 else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k - 5, 20) / 20)),
    ),
    (
        "warmup-cosine-no-warmup",
        S.warmup_cosine_decay(0.3, 1.0, 0, 20),
        lambda k: 0.5 * (1 + math.cos(math.pi * min(k, 20) / 20)),
    ),
    ("linear", S.linear(1.0, 0.1, 20), lambda k: 1.0 + (0.1 - 1.0) * min(k, 20) / 20),
    ("linear-begin", S.linear(1.0, 0.0, 10, transition_begin=5), lambda k: 1.0 - min(max(k - 5, 0), 10) / 10),
    ("polynomial", S.polynomial(1.0, 0.01, 2.0, 25), lambda k: 0.99 * (1 - min(k, 25) / 25) ** 2 + 0.01),
    ("one_cycle", S.one_cycle(30, 0.5), lambda k: _one_cycle_torch(min(k, 29), 30, 0.5, 0.3, 25.0, 1e4)),
    (
        "one_cycle-options",
        S.one_cycle(35, 2.0, pct_start=0.4, div_factor=10.0, final_div_factor=100.0),
        lambda k: _one_cycle_torch(min(k, 34), 35, 2.0, 0.4, 10.0, 100.0),
    ),
]


@pytest.mark.parametrize("name,schedule,closed_form", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_closed_form(name, schedule, closed_form):
    np.testing.assert_allclose(_values(schedule), [closed_form(int(k)) for k in STEPS], rtol=1e-12, atol=1e-15)


def test_one_cycle_endpoints():
    values = np.asarray(jax.jit(S.one_cycle(100, 1.0))(np.arange(120)))
    assert values[0] == pytest.approx(1.0 / 25, rel=1e-12)
    assert values.max() == pytest.approx(1.0, rel=1e-12) and values.argmax() == 29  # pct_start * 100 - 1
    assert values[99] == pytest.approx(1.0 / 25 / 1e4, rel=1e-9)
    np.testing.assert_allclose(values[99:], values[99])  # holds the minimum past the end


def test_steps_before_0_give_what_optax_s_schedules_give():
    """A step count is never negative, but a schedule may be called there: a warmup gives its
    init_value, as optax's warmup_cosine_decay_schedule (it gave a negative rate), and one_cycle
    holds peak / div_factor, the rate of torch's first step (it climbed toward the peak)."""
    optax = pytest.importorskip("optax")
    steps = np.arange(-20, 20)
    for args in [(0.0, 1.0, 5, 25, 0.05), (0.3, 1.0, 0, 20), (0.2, 1.0, 5, 30)]:
        got = _values(S.warmup_cosine_decay(*args), steps)
        np.testing.assert_allclose(got, np.asarray(optax.warmup_cosine_decay_schedule(*args)(steps)), rtol=1e-6)
        np.testing.assert_array_equal(got[steps < 0], args[0])
    got = _values(S.one_cycle(30, 0.5), steps)
    want = [_one_cycle_torch(min(max(int(k), 0), 29), 30, 0.5, 0.3, 25.0, 1e4) for k in steps]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(got[steps < 0], got[steps == 0][0])


def test_host_integer_steps_beyond_int32_are_not_wrapped_round_without_x64():
    """A NumPy int64 of a long run's steps (np.arange to plot a rate) went into jax as int32
    without x64: 2**31 wrapped to -2**31 and the rates came back wrong, silently; a Python int of
    2**31 overflowed."""
    steps = np.array([0, 2**31, 3 * 2**30, 2**32])
    with jax.enable_x64(False):
        cosine = np.asarray(S.cosine_decay(0.1, 2**32)(steps), np.float64)
        line = np.asarray(S.linear(1.0, 0.0, 2**32)(steps), np.float64)
        piecewise = np.asarray(
            S.piecewise_constant([2**31, 2**33], [1.0, 0.5, 0.25])(steps + np.array([0, 0, 0, 2**33]))
        )
        one = float(S.linear(1.0, 0.0, 2**32)(2**31))
    np.testing.assert_allclose(cosine, 0.1 * 0.5 * (1 + np.cos(np.pi * steps / 2**32)), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(line, [1.0, 0.5, 0.25, 0.0], atol=1e-7)
    np.testing.assert_array_equal(piecewise, [1.0, 1.0, 0.5, 0.25])
    assert one == 0.5


def test_piecewise_constant_takes_jax_arrays_as_numpy_s_and_refuses_other_ranks():
    """Keras's PiecewiseConstantDecay takes tensors; fnn took NumPy arrays and refused jax's."""
    from_jax = S.piecewise_constant(jax.numpy.array([5, 10]), jax.numpy.array([0.5, 0.25, 0.125]))
    assert (
        from_jax
        == S.piecewise_constant([5, 10], [0.5, 0.25, 0.125])
        == S.piecewise_constant(np.array([5, 10]), np.array([0.5, 0.25, 0.125]))
    )
    for bad in (np.array(3), jax.numpy.ones((2, 2)), "510"):
        with pytest.raises(TypeError, match=r"boundaries must be a sequence of numbers \(a list, a 1-D array\)"):
            S.piecewise_constant(bad, [1.0, 2.0])


@pytest.mark.parametrize("big", [2**31, 2**40])
def test_step_counts_beyond_int32_give_the_closed_form_s_rates_without_x64(big):
    """A step count of 2**31 or more was accepted and then every call overflowed without x64 (a
    Python int beyond int32 as jnp's operand); optax's cosine and Keras's schedules take it."""
    steps = np.array([0, 5, 2**30, 2**31 - 1], np.int32)
    s = steps.astype(np.float64)
    t = np.clip(s - 3, 0, big)
    cases = [
        (S.cosine_decay(0.1, big, alpha=0.1), 0.1 * (0.9 * 0.5 * (1 + np.cos(np.pi * s / big)) + 0.1)),
        (
            S.exponential_decay(0.1, big, 0.5, transition_begin=big // 4),
            0.1 * 0.5 ** (np.maximum(s - big // 4, 0) / big),
        ),
        (S.warmup_cosine_decay(0.0, 0.1, big, 2 * big), 0.1 * s / big),
        (S.polynomial(0.1, 0.01, 2.0, big, 3), 0.09 * ((big - t) / big) ** 2 + 0.01),
        (S.linear(0.1, 0.01, big, 3), 0.1 - 0.09 * t / big),
    ]
    with jax.enable_x64(False):
        got = jax.jit(lambda v: [schedule(v) for schedule, _ in cases])(steps)
    for (schedule, want), rates in zip(cases, got, strict=True):
        assert rates.dtype == np.float32
        np.testing.assert_allclose(np.asarray(rates, np.float64), want, rtol=2e-6, err_msg=repr(schedule))


@settings(max_examples=25, deadline=None)
@given(
    init=st.floats(1e-4, 10.0),
    alpha=st.floats(0.0, 1.0, allow_subnormal=False),
    decay_steps=st.integers(1, 500),
    step=st.integers(0, 1000),
)
def test_cosine_decay_bounds_and_monotone(init, alpha, decay_steps, step):
    sched = S.cosine_decay(init, decay_steps, alpha)
    now, nxt = float(sched(step)), float(sched(step + 1))
    assert alpha * init * (1 - 1e-12) <= now <= init * (1 + 1e-12)
    assert nxt <= now * (1 + 1e-12)


INVALID = [
    (lambda: S.constant(float("nan")), "value"),
    (lambda: S.exponential_decay(0.1, 0, 0.5), "transition_steps"),
    (lambda: S.exponential_decay(0.1, 10, -0.5), "decay_rate"),
    (lambda: S.exponential_decay(0.1, 2.5, 0.5), "transition_steps"),
    (lambda: S.piecewise_constant([5, 3], [1.0, 0.5, 0.1]), "boundaries"),
    (lambda: S.piecewise_constant([5], [1.0]), "values"),
    (lambda: S.cosine_decay(0.1, 10, alpha=1.5), "alpha"),
    (lambda: S.cosine_decay(float("inf"), 10), "init_value"),
    (lambda: S.warmup_cosine_decay(0.0, 1.0, 10, 10), "decay_steps"),
    (lambda: S.warmup_cosine_decay(0.0, 1.0, -1, 10), "warmup_steps"),
    (lambda: S.polynomial(1.0, 0.0, -1.0, 10), "power"),
    (lambda: S.linear(1.0, 0.0, 0), "transition_steps"),
    (lambda: S.one_cycle(100, 1.0, pct_start=1.0), "pct_start"),
    (lambda: S.one_cycle(100, 1.0, div_factor=0.0), "div_factor"),
    (lambda: S.one_cycle(2, 1.0), "pct_start"),
]


@pytest.mark.parametrize("build,argname", INVALID)
def test_invalid_arguments_raise_naming_them(build, argname):
    with pytest.raises(ValueError, match=argname):
        build()


def test_non_numeric_argument_is_a_type_error():
    with pytest.raises(TypeError, match="init_value"):
        S.cosine_decay("0.1", 10)
    with pytest.raises(TypeError, match="boundaries must be a sequence of numbers \\(a list, a 1-D array\\), got None"):
        S.piecewise_constant(None, [1.0])
    with pytest.raises(TypeError, match="values must be a sequence of numbers \\(a list, a 1-D array\\), got 1.0"):
        S.piecewise_constant([1], 1.0)
    # any truthy value used to switch staircase on ("False" included)
    with pytest.raises(TypeError, match="staircase must be True or False, got 'False'"):
        S.exponential_decay(0.1, 10, 0.5, staircase="False")


def test_schedules_take_steps_of_any_shape_under_rank_promotion_raise():
    """Steps (2, 18), integer and float, give the default setting's values bit for bit under
    jax_numpy_rank_promotion="raise" (piecewise_constant compared (..., 1) steps with (k,)
    boundaries), piecewise_constant's the boundaries' ``searchsorted`` index."""
    steps = np.arange(-3, 33).reshape(2, 18)
    every = jax.jit(lambda i, f: [(schedule(i), schedule(f)) for _, schedule, _ in CASES])
    with jax.numpy_rank_promotion("raise"):
        got = every(steps.astype(np.int32), steps.astype(np.float32))
    want = every(steps.astype(np.int32), steps.astype(np.float32))
    chex.assert_trees_all_equal(got, want)
    piecewise = got[[name for name, _, _ in CASES].index("piecewise")]
    for values in piecewise:
        np.testing.assert_array_equal(values, np.array([1.0, 0.5, 0.1])[np.searchsorted([5, 12], steps)])


def test_piecewise_constant_compares_integer_steps_exactly_past_float32_s_range():
    """A float32 step rounds 2**24 + 1 onto the boundary 2**24 (Keras's PiecewiseConstantDecay
    gives the next value there); integer steps, Python's or int32 arrays, compare as integers.
    Under x64 a Python int is int64: the int32 array is the float32-era case."""
    b = 2**24
    sched = S.piecewise_constant([b, b + 4], [1.0, 0.5, 0.25])
    steps = np.array([b - 1, b, b + 1, b + 4, b + 5, 2**31 - 1], np.int32)
    # boundaries outside an integer dtype's range: never passed above it, always below it (a
    # clip and cast wrapped 1e19 to -2**63 in int64 and put -3 at 0 for unsigned steps)
    frac = S.piecewise_constant([2.5], [1.0, 0.5])
    above, below = S.piecewise_constant([1e19], [1.0, 0.5]), S.piecewise_constant([-3], [1.0, 0.5])
    dtypes = (np.int32, np.int64, np.uint32)

    @jax.jit  # one compilation instead of eager dispatch of every op; each step keeps its type
    def run(steps):
        return (
            sched(steps),
            sched(b + 1),
            frac(np.array([2, 3], np.int32)),
            frac(np.array([2.0, 2.5, 2.6])),
            [(above(np.array(0, dtype)), below(np.array(0, dtype))) for dtype in dtypes],
        )

    at_steps, at_python_int, frac_int, frac_float, outside = run(steps)
    np.testing.assert_array_equal(np.asarray(at_steps), [1.0, 1.0, 0.5, 0.5, 0.25, 0.25])
    assert float(at_python_int) == 0.5
    # a fractional boundary between integers: step 3 > 2.5, step 2 is not
    np.testing.assert_array_equal(np.asarray(frac_int), [1.0, 0.5])
    np.testing.assert_array_equal(np.asarray(frac_float), [1.0, 1.0, 0.5])
    for dtype, (above_value, below_value) in zip(dtypes, outside, strict=True):
        assert float(above_value) == 1.0 and float(below_value) == 0.5, dtype


def test_schedules_compare_hash_and_pickle_by_value():
    """A schedule is its rule and arguments (issue 18: caches key on structure, not identity):
    built twice it is equal, hashes equal and pickles to an equal schedule with the same values."""
    import pickle

    builds = [
        lambda: S.constant(0.5),
        lambda: S.exponential_decay(0.1, 10, 0.5, staircase=True, end_value=0.01),
        lambda: S.piecewise_constant([2, 4], [1.0, 0.5, 0.25]),
        lambda: S.cosine_decay(1.0, 10, alpha=0.1),
        lambda: S.warmup_cosine_decay(0.0, 1.0, 4, 40),
        lambda: S.polynomial(1.0, 0.01, 2.0, 25),
        lambda: S.one_cycle(30, 0.5),
    ]
    steps = np.arange(0, 45, 3)
    for build in builds:
        a, b = build(), build()
        assert a == b and hash(a) == hash(b)
        c = pickle.loads(pickle.dumps(a))
        assert c == a
        np.testing.assert_array_equal(np.asarray(c(steps)), np.asarray(a(steps)))
    assert S.exponential_decay(0.1, 10, 0.5) != S.exponential_decay(0.2, 10, 0.5)
    assert S.linear(1.0, 0.0, 4) == S.polynomial(1.0, 0.0, 1.0, 4)  # the same schedule
    assert repr(S.exponential_decay(0.1, 10, 0.5)) == (
        "fnn.schedules.exponential_decay(init_value=0.1, transition_steps=10, decay_rate=0.5, "
        "transition_begin=0, staircase=False, end_value=None)"
    )


def test_a_schedule_splits_into_a_rule_shared_across_values_and_its_values_as_data():
    """A schedule's numbers are data (an optimizer holds them in its state): its rule, given
    them as arrays (a program's inputs, as an optimizer state's are), gives the bits of the
    schedule called directly (where they are the program's constants), for every case; the
    rule is the same for other values and differs where the step structure does."""
    schedules = [case[1] for case in CASES]
    steps = np.asarray(STEPS, np.int32)
    direct = jax.jit(lambda s: [schedule(s) for schedule in schedules])(steps)
    rules, values = zip(*(schedule.as_data() for schedule in schedules), strict=True)
    arrays = [{k: np.asarray(v, np.float64) for k, v in v_.items()} for v_ in values]
    from_data = jax.jit(lambda vs, s: [rule(s, v) for rule, v in zip(rules, vs, strict=True)])(arrays, steps)
    for (name, *_), want, got in zip(CASES, direct, from_data, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)
    same = [
        (S.constant(0.3), S.constant(0.07)),
        (S.exponential_decay(0.1, 5, 0.5, end_value=0.01), S.exponential_decay(0.3, 5, 2.0, end_value=0.9)),
        (S.piecewise_constant([5, 12], [1.0, 0.5, 0.1]), S.piecewise_constant([5, 12], [0.2, 0.3, 0.4])),
        (S.cosine_decay(0.2, 30), S.cosine_decay(1e-2, 30, alpha=0.5)),
        (S.warmup_cosine_decay(0.0, 1.0, 5, 25), S.warmup_cosine_decay(0.1, 0.3, 5, 25, end_value=0.01)),
        (S.linear(1.0, 0.1, 20), S.linear(0.5, 0.7, 20)),
        (S.one_cycle(30, 0.5), S.one_cycle(30, 0.1, pct_start=0.5, div_factor=3.0, final_div_factor=7.0)),
    ]
    for a, b in same:
        assert a != b and a.as_data()[0] == b.as_data()[0] and hash(a.as_data()[0]) == hash(b.as_data()[0]), a
    other = [
        (S.cosine_decay(0.2, 30), S.cosine_decay(0.2, 31)),
        (S.exponential_decay(0.1, 5, 0.5), S.exponential_decay(0.1, 5, 0.5, staircase=True)),
        (S.exponential_decay(0.1, 5, 0.5), S.exponential_decay(0.1, 5, 0.5, end_value=0.01)),  # unbounded
        (S.piecewise_constant([5, 12], [1.0, 0.5, 0.1]), S.piecewise_constant([5, 13], [1.0, 0.5, 0.1])),
        (S.polynomial(1.0, 0.0, 2.0, 20), S.polynomial(1.0, 0.0, 3.0, 20)),  # power shapes the program
        (S.one_cycle(30, 0.5), S.one_cycle(31, 0.5)),
    ]
    for a, b in other:
        assert a.as_data()[0] != b.as_data()[0], a
    assert S.cosine_decay(0.2, 30, alpha=0.25).as_data()[1] == {"init_value": 0.2, "alpha": 0.25, "span": 0.75}


def test_a_traced_value_is_refused_saying_why_and_pointing_to_sweep():
    """A schedule's numbers are fixed when it is built: under vmap (a peak rate per model) the
    message says so instead of calling the tracer "not a real number"."""
    known = r"init_value must be a real number known when it is set, got a traced value.*fnn\.sweep"
    with pytest.raises(TypeError, match=known):
        jax.vmap(lambda v: S.cosine_decay(v, 10))(np.array([0.1, 0.2]))
