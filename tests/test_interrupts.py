"""fnn/_interrupts.py: Ctrl-C (a real SIGINT) and SIGTERM held over a section and delivered at its end."""

import contextlib
import signal
import threading

import pytest

from fnn._interrupts import Terminated, caught, ctrl_c_recorded, interrupts_held


def test_a_ctrl_c_inside_is_delivered_when_the_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            done.append("after the signal")  # the block runs on to its end
        done.append("after the block")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_goes_through_at_once():
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts_held():
        signal.raise_signal(signal.SIGINT)
        done.append(1)
        signal.raise_signal(signal.SIGINT)
        done.append(2)
    assert done == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nothing_held_nothing_delivered_and_an_error_drops_the_held_ctrl_c():
    with interrupts_held():
        pass
    with pytest.raises(ValueError, match="the block's own"), interrupts_held():
        signal.raise_signal(signal.SIGINT)
        raise ValueError("the block's own")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_handler_in_place_is_the_one_called(monkeypatch):
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # not a Python handler: left alone
        with interrupts_held():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # ignored, as it would be outside
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_holds_nothing():
    seen, errors = [], []

    def worker():
        try:
            with interrupts_held():
                seen.append(signal.getsignal(signal.SIGINT))
        except BaseException as err:  # reported in the test's thread
            errors.append(err)

    t = threading.Thread(target=worker)
    t.start()
    t.join(timeout=30)
    assert errors == [] and seen == [signal.default_int_handler]


def test_a_recorded_ctrl_c_that_was_dropped_is_raised_at_the_next_section_end():
    """What a gc callback does to a KeyboardInterrupt raised inside it (drops it) does not lose
    the Ctrl-C under ctrl_c_recorded: the next held section ends by raising it."""
    done = []
    with ctrl_c_recorded():
        with contextlib.suppress(KeyboardInterrupt):  # dropped, as Python drops one in a gc callback
            signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt), interrupts_held():
            done.append("the section runs")
        assert done == ["the section runs"]
        with pytest.raises(KeyboardInterrupt), interrupts_held():  # until the command has it
            pass
        caught()
        with interrupts_held():
            done.append("nothing left")
    assert done == ["the section runs", "nothing left"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts_held():  # nothing recorded outside
        pass


def test_sigterm_under_ctrl_c_recorded_is_a_ctrl_c_that_names_itself():
    """SIGTERM (kill, timeout) within the CLI's commands raises Terminated, a KeyboardInterrupt
    (every `except KeyboardInterrupt` stops on it), held over a section and recorded as a
    Ctrl-C is; the OS default is back afterwards."""
    outside = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a fresh process
    try:
        done = []
        with ctrl_c_recorded():
            assert callable(signal.getsignal(signal.SIGTERM))  # (the OS default would end pytest)
            with pytest.raises(Terminated):
                signal.raise_signal(signal.SIGTERM)
            caught()
            with pytest.raises(Terminated), interrupts_held():
                signal.raise_signal(signal.SIGTERM)
                done.append("held to the section's end")
            caught()
            with contextlib.suppress(KeyboardInterrupt):  # dropped, as in a gc callback
                signal.raise_signal(signal.SIGTERM)
            with pytest.raises(Terminated), interrupts_held():
                pass
            caught()
            with pytest.raises(KeyboardInterrupt) as ctrl_c, interrupts_held():  # Ctrl-C stays Ctrl-C
                signal.raise_signal(signal.SIGINT)
            assert not isinstance(ctrl_c.value, Terminated)
        assert done == ["held to the section's end"] and issubclass(Terminated, KeyboardInterrupt)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, outside)
