"""Replaying a capture through the whole instrument (pad -> controls -> engine -> outputs)."""

from __future__ import annotations

import json

from riffpad.instrument.settings import Settings
from riffpad.instrument.status import Snapshot, StatusView
from riffpad.instrument.wiring import build

from .engines import make_request
from .pad import write_capture


def replay(tmp_path, script, engine, **kw):
    cap = write_capture(tmp_path / "in.jsonl", script)
    out = tmp_path / "watched"
    feedback = tmp_path / "feedback.jsonl"
    opts = Settings(
        replay=str(cap), out=str(out), capture_output=str(feedback), no_audio=True, live=False, **kw
    )
    snap = Snapshot()
    view = StatusView(snap, live=False, stream=open(tmp_path / "log.txt", "w"))
    inst = build(opts, view, engine=engine, make_request=make_request)
    code = inst.run()
    takes = sorted(out.glob("*.json"))
    lines = [json.loads(x) for x in feedback.read_text().splitlines()]
    return code, inst, [json.loads(p.read_text()) for p in takes], lines, out


def jam_replay(tmp_path, script, engine, jam_config=None, **kw):
    cap = write_capture(tmp_path / "in.jsonl", script)
    opts = Settings(
        replay=str(cap),
        out=str(tmp_path / "watched"),
        capture_output=str(tmp_path / "fb.jsonl"),
        no_audio=True,
        live=False,
        record_audio=str(tmp_path / "session.wav"),
        **kw,
    )
    view = StatusView(Snapshot(), live=False, stream=open(tmp_path / "log.txt", "w"))
    inst = build(opts, view, engine=engine, make_request=make_request, jam=jam_config)
    assert inst.run() == 0
    feedback = [json.loads(x) for x in (tmp_path / "fb.jsonl").read_text().splitlines()]
    return inst, feedback
