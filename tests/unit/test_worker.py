import threading
import time

import pytest

from riffpad.instrument.worker import GENERATING, IDLE, STOPPED, GenerationWorker


class GatedRender:
    """A render that blocks until the test lets it finish, recording what it rendered."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.rendered = []
        self.threads = set()

    def __call__(self, job):
        self.threads.add(threading.get_ident())
        self.started.set()
        assert self.release.wait(5)
        self.release.clear()
        if job == "boom":
            raise ValueError("engine exploded")
        self.rendered.append(job)
        return f"take-{job}"


def _wait(cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_latest_wins_one_pending_and_superseded_jobs_are_reported():
    render = GatedRender()
    done = []
    w = GenerationWorker(render, on_done=lambda j, r: done.append((j, r)))
    assert w.submit(1) is None
    assert render.started.wait(5)
    assert w.state == GENERATING and w.current == 1
    assert w.submit(2) is None  # waits behind 1
    assert w.submit(3) == 2  # replaces 2, which is handed back
    assert w.submit(4) == 3
    assert w.superseded == 2 and w.pending == 4
    render.release.set()
    _wait(lambda: len(render.rendered) == 1 and w.current == 4)
    render.release.set()
    assert w.wait_idle(5)
    assert render.rendered == [1, 4]
    assert done == [(1, "take-1"), (4, "take-4")]
    assert w.state == IDLE and not w.busy
    assert len(render.threads) == 1 and threading.get_ident() not in render.threads
    w.close()
    assert w.state == STOPPED


def test_failed_render_reports_error_and_worker_keeps_going():
    render = GatedRender()
    errors, done = [], []
    w = GenerationWorker(
        render, on_done=lambda j, r: done.append(j), on_error=lambda j, e: errors.append((j, e))
    )
    w.submit("boom")
    render.release.set()
    _wait(lambda: errors)
    assert errors[0][0] == "boom" and isinstance(errors[0][1], ValueError)
    w.submit("ok")
    render.release.set()
    assert w.wait_idle(5)
    assert done == ["ok"] and w.failed == 1 and w.completed == 1
    w.close()


def test_on_start_runs_before_render_on_the_worker():
    order = []
    w = GenerationWorker(
        lambda j: order.append(("render", j)), on_start=lambda j: order.append(("start", j))
    )
    w.submit("a")
    assert w.wait_idle(5)
    assert order == [("start", "a"), ("render", "a")]
    w.close()


def test_close_finishes_current_and_can_cancel_pending():
    render = GatedRender()
    w = GenerationWorker(render)
    w.submit(1)
    assert render.started.wait(5)
    w.submit(2)
    closer = threading.Thread(
        target=lambda: setattr(closer, "cancelled", w.close(cancel_pending=True))
    )
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()  # waits for the take in progress
    render.release.set()
    closer.join(5)
    assert closer.cancelled == 2
    assert render.rendered == [1]
    assert w.state == STOPPED
    with pytest.raises(RuntimeError):
        w.submit(3)


def test_close_without_cancel_renders_the_pending_job():
    render = GatedRender()
    w = GenerationWorker(render)
    w.submit(1)
    assert render.started.wait(5)
    w.submit(2)
    render.release.set()
    _wait(lambda: w.current == 2)
    render.release.set()
    w.close(timeout=5)
    assert render.rendered == [1, 2]
