"""The reader thread's decisions on their own: pacing a file at its fps, and failed reads."""

from __future__ import annotations

import time

from runtime.reading import READ, SKIP, STOP, Pacer, ReadFailures


def test_pacer_waits_for_a_frame_due_later_and_skips_one_more_than_a_frame_late():
    waits = []
    pacer = Pacer(10.0, True, lambda s: waits.append(s) or False)
    assert pacer.before(5, can_skip=True) == READ and 0.3 < waits[0] <= 0.5  # due 0.5 s after the start
    pacer._t0 = time.monotonic() - 1.0  # 1 s in: frame 5 is 0.5 s (5 frames) late
    assert pacer.before(5, can_skip=True) == SKIP
    assert pacer.before(5, can_skip=False) == READ  # a capture without grab() reads it
    assert pacer.before(10, can_skip=True) == READ  # on time (within a frame)
    assert len(waits) == 1


def test_pacer_stops_when_stopped_while_waiting_and_is_off_for_live_sources():
    assert Pacer(10.0, True, lambda s: True).before(100, can_skip=True) == STOP
    never = Pacer(10.0, False, lambda s: (_ for _ in ()).throw(AssertionError("waited")))
    assert never.before(100, can_skip=True) == READ and never.before(0, can_skip=True) == READ


def test_failed_reads_are_decode_errors_until_the_limit_or_the_declared_end():
    f = ReadFailures(3)
    assert [f.failed(False), f.failed(False)] == [False, False]
    assert f.recovered() == 2 and f.count == 0  # a good read: those two were decode errors
    assert [f.failed(False), f.failed(False), f.failed(False)] == [False, False, True]
    assert f.count == 0  # classified (the end, or a drop): counting starts over
    assert f.failed(True) is True  # at the frame count the file declares: the end at once
    assert f.recovered() == 0
