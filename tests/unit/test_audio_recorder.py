"""The session recorder writes through riffpad.atomic's temp-file scheme: a finished
recording appears whole, a failed one leaves nothing behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from riffpad.audio.recorder import RecordError, SessionRecorder


def test_the_recording_is_written_aside_then_published(tmp_path):
    path = tmp_path / "jam.wav"
    rec = SessionRecorder(path, 44100)
    rec.write(np.linspace(-0.5, 0.5, 1000, dtype=np.float32))
    # While recording only the dot-prefixed temporary file beside the target exists.
    names = os.listdir(tmp_path)
    assert len(names) == 1 and names[0].startswith(".jam.wav.") and names[0].endswith(".tmp")
    assert rec.close() == path
    assert os.listdir(tmp_path) == ["jam.wav"]
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == 44100 and np.array_equal(data, np.linspace(-0.5, 0.5, 1000, dtype=np.float32))


def test_a_write_that_fails_mid_jam_is_reported_at_close_and_leaves_nothing(tmp_path):
    path = tmp_path / "jam.wav"
    rec = SessionRecorder(path, 44100)

    class FullDisk:
        def __init__(self, real):
            self.real = real

        def write(self, block):
            raise OSError(28, "No space left on device")

        def close(self):
            self.real.close()

    rec._file = FullDisk(rec._file)
    rec.write(np.ones(100, np.float32))
    with pytest.raises(RecordError, match=r"jam\.wav.*No space left"):
        rec.close()
    assert os.listdir(tmp_path) == []
