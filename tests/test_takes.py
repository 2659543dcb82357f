import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from riffpad.instrument.takes import TEMP_PREFIX, TakeWriteError, TakeWriter

SR = 44100


def _take(seconds=0.25, value=0.5):
    audio = (value * np.sin(np.linspace(0, 200, int(SR * seconds)))).astype(np.float32)
    image = Image.new("RGB", (64, 32), (10, 20, 30))
    return audio, image


def _fixed_clock():
    return 1_700_000_000.0


def test_take_is_three_complete_files_with_json_naming_them(tmp_path):
    w = TakeWriter(tmp_path, clock=_fixed_clock)
    w.prepare()
    audio, image = _take()
    files = w.write(audio, SR, image, {"alpha": 0.25, "seed": 7, "cfg": 7.0, "steps": 20})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [files.wav.name, files.png.name, files.json.name]
    )
    assert files.stem.endswith("-1")
    data, sr = soundfile.read(files.wav, dtype="float32")
    assert sr == SR and len(data) == len(audio)
    assert np.max(np.abs(data - audio)) < 1e-3  # 16-bit PCM
    assert Image.open(files.png).size == (64, 32)
    meta = json.loads(files.json.read_text())
    assert meta["alpha"] == 0.25 and meta["seed"] == 7 and meta["steps"] == 20
    assert meta["take"] == files.stem
    assert meta["files"] == {"wav": files.wav.name, "png": files.png.name, "json": files.json.name}


def test_png_keeps_the_spectrogram_tags_and_the_pixels(tmp_path):
    from riffpad.audio.params import SpectrogramParams, params_from_image, tag_image

    w = TakeWriter(tmp_path, clock=_fixed_clock)
    w.prepare()
    audio, image = _take()
    params = SpectrogramParams(max_frequency=8000)
    files = w.write(audio, SR, tag_image(image, params), {})
    with Image.open(files.png) as png:
        assert params_from_image(png) == params  # a DAW or Riffusion reads them back
        assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(image))


def test_names_increment_and_never_clobber(tmp_path):
    # Same second for every take, and a foreign file already holding the next name.
    w = TakeWriter(tmp_path, clock=_fixed_clock)
    w.prepare()
    audio, image = _take()
    first = w.write(audio, SR, image, {"i": 1})
    squatter = tmp_path / first.wav.name.replace("-1.wav", "-2.png")
    squatter.write_bytes(b"not ours")
    second = w.write(audio, SR, image, {"i": 2})
    assert second.stem.endswith("-3")
    assert squatter.read_bytes() == b"not ours"
    # A second writer (another process) starting its own count at 1 skips taken names.
    other = TakeWriter(tmp_path, clock=_fixed_clock)
    third = other.write(audio, SR, image, {"i": 3})
    assert third.stem not in {first.stem, second.stem}
    assert json.loads(first.json.read_text())["i"] == 1
    assert json.loads(second.json.read_text())["i"] == 2


def test_disk_full_leaves_nothing_and_writer_recovers(tmp_path):
    w = TakeWriter(tmp_path, clock=_fixed_clock)
    w.prepare()
    audio, image = _take()
    calls = []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 2:  # the PNG: the WAV temp exists already
            raise OSError(errno.ENOSPC, "No space left on device")
        TakeWriter.write_file(fd, data)

    w.write_file = full_disk
    with pytest.raises(TakeWriteError, match="disk is full"):
        w.write(audio, SR, image, {})
    assert list(tmp_path.iterdir()) == []
    del w.write_file
    files = w.write(audio, SR, image, {})
    assert files.json.exists()


def test_real_full_filesystem(tmp_path):
    # A real ENOSPC from a tiny tmpfs, when we may mount one (root in a container).
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        w = TakeWriter(mnt, clock=_fixed_clock)
        w.prepare()
        audio, image = _take(seconds=1.0)  # 88 kB of WAV > 48k
        with pytest.raises(TakeWriteError, match="disk is full"):
            w.write(audio, SR, image, {})
        assert list(mnt.iterdir()) == []
        small_audio, _ = _take(seconds=0.05)
        assert w.write(small_audio, SR, image, {}).json.exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_folder_not_writable_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    w = TakeWriter(blocker / "takes")
    with pytest.raises(TakeWriteError, match="cannot create the takes folder"):
        w.prepare()


def test_folder_removed_under_the_writer(tmp_path):
    folder = tmp_path / "takes"
    w = TakeWriter(folder)
    w.prepare()
    folder.rmdir()
    audio, image = _take()
    with pytest.raises(TakeWriteError, match=str(folder)):
        w.write(audio, SR, image, {})


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{TEMP_PREFIX}{dead_pid}-0.wav.tmp"
    stale.write_bytes(b"half")
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-99.wav.tmp"
    mine.write_bytes(b"live")
    removed = TakeWriter(tmp_path).prepare()
    assert removed == [stale]
    assert mine.exists() and not stale.exists()


KILL_SCRIPT = r"""
import sys, time
import numpy as np
from PIL import Image
from riffpad.instrument.takes import TakeWriter
w = TakeWriter(sys.argv[1])
w.prepare()
def slow(fd, data):
    view = memoryview(data)
    while view:
        import os
        view = view[os.write(fd, view[:4096]):]
        print("writing", flush=True)
        time.sleep(0.01)
w.write_file = slow
audio = np.zeros(44100 * 4, dtype=np.float32)
w.write(audio, 44100, Image.new("RGB", (8, 8)), {})
print("done", flush=True)
"""


def test_sigkill_during_write_leaves_no_partial_wav(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    for _ in range(5):  # let it get a few chunks into the WAV
        assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    visible = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert visible == []
    assert any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())
    # The next instrument start sweeps the dead writer's temporaries.
    TakeWriter(tmp_path).prepare()
    assert list(tmp_path.iterdir()) == []
