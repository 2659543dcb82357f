"""--midi-clock: tempo, Start/Stop/Continue and jitter smoothing, through a port with
mido's input interface (this machine has no ALSA sequencer for a virtual rtmidi port)."""

import threading
import time

import numpy as np
import pytest
import soundfile

mido = pytest.importorskip("mido", reason="could not import mido: pip install 'riffpad[midi]'")
from mido.ports import BaseInput, BaseOutput  # noqa: E402

from riffpad.tempo.midiclock import PPQN, MidiClock, pulses_bpm  # noqa: E402


def clock_times(bpm, pulses, jitter_s=0.0, t0=0.0, seed=1):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(pulses) * 60.0 / (bpm * PPQN)
    return t + rng.uniform(-jitter_s, jitter_s, pulses)


class ScriptedPort(BaseInput):
    """A mido input port that delivers (time, message) pairs: each message is received at
    its time on the port's clock (what an rtmidi port's callback thread would see)."""

    def __init__(self, script):
        self.now = 0.0
        self._script = list(script)
        self.drained = threading.Event()
        super().__init__("scripted")

    def clock(self):
        return self.now

    def _receive(self, block=True):
        if not self._script:
            self.drained.set()
            return None
        self.now, msg = self._script.pop(0)
        return msg


def test_the_tempo_is_fitted_through_jittery_pulses():
    times = clock_times(125.0, 96, jitter_s=0.002)  # +-2 ms, USB-ish
    assert pulses_bpm(times) == pytest.approx(125.0, rel=0.005)
    naive = 60.0 / (PPQN * np.diff(times))  # one interval each: off by up to ~20 %
    assert np.max(np.abs(naive / 125.0 - 1)) > 0.05
    mc = MidiClock()
    for t in times:
        mc.feed(mido.Message("clock"), t)
    assert mc.bpm() == pytest.approx(125.0, rel=0.005)


def test_start_stop_and_continue_count_beats_from_the_downbeat():
    now = [0.0]
    mc = MidiClock(beats_per_bar=4, clock=lambda: now[0])
    clock = mido.Message("clock")
    assert mc.bpm() is None and not mc.playing()  # free-running until pulses come
    times = iter(clock_times(100.0, 400))

    def t():  # the next pulse's time, which is also "now" when it arrives
        now[0] = next(times)
        return now[0]

    for _ in range(24):
        mc.feed(clock, t())  # tempo before Start, no beats counted
    assert mc.bpm() == pytest.approx(100.0) and mc.pulses == 0
    mc.feed(mido.Message("start"), 0.0)
    for _ in range(PPQN * 5 + 12):  # five and a half beats
        mc.feed(clock, t())
    assert mc.playing() and mc.beat() == 5.5 and mc.phase() == 1.5
    assert mc.downbeat_in() == pytest.approx(2.5 * 60 / 100)
    now[0] += 0.5 * 60 / (100 * PPQN)  # half a pulse later the beat has moved on
    assert mc.beat() == pytest.approx(5.5 + 0.5 / PPQN)
    now[0] += 1.0  # but a clock that falls silent does not run on past its next pulse
    assert mc.beat() == pytest.approx(5.5 + 1 / PPQN)
    mc.feed(mido.Message("stop"), 0.0)
    for _ in range(PPQN):
        mc.feed(clock, t())  # clock runs on while stopped: beats hold
    assert not mc.playing() and mc.beat() == 5.5
    mc.feed(mido.Message("continue"), 0.0)
    for _ in range(12):
        mc.feed(clock, t())
    assert mc.playing() and mc.beat() == 6.0
    mc.feed(mido.Message("start"), 0.0)  # Start again: back to the downbeat
    assert mc.beat() == 0.0


def test_a_pause_in_the_pulses_starts_the_fit_over():
    mc = MidiClock()
    for t in clock_times(90.0, 48):
        mc.feed(mido.Message("clock"), t)
    for t in clock_times(140.0, 24, t0=10.0):  # a new tempo after a 9 s silence
        mc.feed(mido.Message("clock"), t)
    assert mc.bpm() == pytest.approx(140.0, rel=1e-6)


def test_midi_clock_from_a_port_drives_the_tempo_source():
    msgs = [(0.0, mido.Message("start"))]
    msgs += [(t, mido.Message("clock")) for t in clock_times(132.0, 96, 0.001, t0=0.01)]
    msgs += [(2.0, mido.Message("stop"))]
    port = ScriptedPort(msgs)
    mc = MidiClock(port, clock=port.clock)
    assert port.drained.wait(5.0)
    mc.close()
    assert mc.bpm() == pytest.approx(132.0, rel=0.005)
    assert mc.pulses == 96 and mc.beat() == 4.0 and mc.phase() == 0.0 and not mc.playing()
    assert port.closed


def test_a_jam_follows_midi_clock_tempo_and_stops_with_it(tmp_path):
    from support.engines import ToneEngine
    from support.instrument import jam_replay
    from support.pad import IDLE, pad_script

    from riffpad.jam.session import JamConfig
    from riffpad.jam.sim import LoopFitter
    from riffpad.tempo.bars import slot_samples

    mc = MidiClock(beats_per_bar=1)

    def drum_machine():  # 150 BPM from now, Start first, Stop after 3 s
        t0 = time.monotonic()
        mc.feed(mido.Message("start"))
        for t in clock_times(150.0, PPQN * 150 * 3 // 60, t0=t0):
            time.sleep(max(0.0, t - time.monotonic()))
            mc.feed(mido.Message("clock"))
        mc.feed(mido.Message("stop"))

    machine = threading.Thread(target=drum_machine)
    machine.start()
    while mc.bpm() is None:  # the clock runs before the jam starts
        time.sleep(0.01)
    script = pad_script([(6.0, IDLE)])
    cfg = JamConfig(crossfade_s=0.02, tempo=mc, beats_per_bar=1, fitter=LoopFitter())
    inst, _ = jam_replay(tmp_path, script, ToneEngine(delay=0.02), jam=True, jam_config=cfg)
    machine.join()
    jam = inst.jam
    s = jam.streams[0]
    assert all(sl.clip.bpm == pytest.approx(150.0, rel=0.01) for sl in s.slots)
    # Whole bars of the clock's tempo, each end nudged onto the clock's downbeat.
    bar = slot_samples(1, 150.0, 1)
    assert all(abs(sl.length - sl.bars * bar) < 0.1 * bar for sl in s.slots)
    # Stop at 3 s ended the jam (the clip playing played out), long before the replay did.
    assert s.finished and s.length() / 44100 < 3.0 + 1.0
    assert "jam off" in (tmp_path / "log.txt").read_text()


class RecordingPort(BaseOutput):
    """A mido output port that keeps (time, message) of everything sent."""

    def __init__(self, clock):
        self.sent = []
        self._clock = clock
        super().__init__("recording")

    def _send(self, msg):
        self.sent.append((self._clock(), msg))


def test_clock_out_pulses_24_a_beat_at_absolute_times_from_start_to_stop():
    from riffpad.tempo.midiout import MidiOut

    now = [0.0]
    port = RecordingPort(lambda: now[0])

    def wait(seconds):  # time passes at once, and a little late each time
        now[0] += seconds + 0.003
        return now[0] >= 1.0

    out = MidiOut(port, clock=lambda: now[0], wait=wait)
    out.start_clock(lambda: 120.0)
    out._thread.join(5.0)
    out.stop_clock()
    kinds = [m.type for _, m in port.sent]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    pulses = [t for t, m in port.sent if m.type == "clock"]
    # Sleeping late does not add up: pulse k is at k/48 s (or 3 ms late), for a second.
    assert len(pulses) == 48
    assert np.allclose(pulses, np.arange(48) / 48, atol=0.0031)
    assert pulses_bpm(pulses) == pytest.approx(120.0, rel=0.01)


def test_fire_and_promote_send_their_notes():
    from riffpad.tempo.midiout import MidiOut

    port = RecordingPort(lambda: 0.0)
    out = MidiOut(port)
    out.event("fire")
    out.event("promote")
    out.event("jam")  # not a note
    time.sleep(0.3)
    got = [(m.type, m.note) for _, m in port.sent]
    assert got[:2] == [("note_on", 60), ("note_on", 61)]
    assert sorted(got[2:]) == [("note_off", 60), ("note_off", 61)]
    out.close()
    assert port.closed


def test_a_jam_at_a_fixed_tempo_sends_clock_and_a_note_per_fire(tmp_path):
    from support.engines import ToneEngine
    from support.instrument import jam_replay
    from support.pad import IDLE, MOVED_FIRE, pad_script

    from riffpad.jam.session import JamConfig
    from riffpad.jam.sim import LoopFitter
    from riffpad.tempo.midiout import MidiOut

    port = RecordingPort(time.monotonic)
    cfg = JamConfig(crossfade_s=0.02, bpm=150.0, beats_per_bar=1, fitter=LoopFitter(),
                    midi_out=MidiOut(port))  # fmt: skip
    script = pad_script([(2.0, IDLE), (0.06, MOVED_FIRE), (2.0, IDLE)])
    inst, _ = jam_replay(tmp_path, script, ToneEngine(delay=0.02), jam=True, jam_config=cfg)
    # The pad's events reach the MIDI out and nothing else: the recording is whole.
    rec = soundfile.read(tmp_path / "session.wav")[0]
    assert len(rec) == inst.jam.tap.frames_played == inst.jam.streams[0].length() > 0
    kinds = [m.type for _, m in port.sent]
    assert "start" in kinds and kinds.index("start") < kinds.index("clock")
    assert "stop" in kinds and "clock" not in kinds[kinds.index("stop") :]
    notes = [m.note for _, m in port.sent if m.type == "note_on"]
    assert notes == [60]
    pulses = [t for t, m in port.sent if m.type == "clock"]
    assert len(pulses) > 100 and pulses_bpm(pulses) == pytest.approx(150.0, rel=0.02)
    assert port.closed
