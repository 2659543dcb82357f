import errno
import json
import os
import re
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
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
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


# A writer that stops dead at a chosen point of publishing: before its first link, or
# after its k-th. The parent then kills it with SIGKILL, as a crash or `kill -9` would.
PAUSE_SCRIPT = r"""
import os, sys, time
import numpy as np
from PIL import Image
from riffpad.instrument.takes import TakeWriter
stop_at = sys.argv[2]
real_link = os.link
count = 0
def link(src, dst):
    global count
    if stop_at == "before-1" and count == 0:
        print("paused", flush=True); time.sleep(60)
    real_link(src, dst)
    count += 1
    if stop_at == f"after-{count}":
        if sys.argv[3:] == ["hard-quit"]:  # a second Ctrl-C: the app's handler does this
            w.remove_own_temps(); os._exit(130)
        print("paused", flush=True); time.sleep(60)
os.link = link
w = TakeWriter(sys.argv[1], clock=lambda: 1_700_000_000.0)
w.prepare()
audio = (0.5 * np.sin(np.arange(44100) / 10)).astype(np.float32)
w.write(audio, 44100, Image.new("RGB", (16, 8), (1, 2, 3)), {"alpha": 0.75})
print("done", flush=True)
"""


def _killed_at(folder: Path, stop_at: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSE_SCRIPT, str(folder), stop_at],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "paused"
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait()


def _visible(folder: Path) -> dict[str, set[str]]:
    takes: dict[str, set[str]] = {}
    for p in folder.iterdir():
        if not p.name.startswith("."):
            takes.setdefault(p.stem, set()).add(p.suffix)
    return takes


@pytest.mark.parametrize("stop_at", ["before-1", "after-1", "after-2", "after-3"])
def test_sigkill_at_each_publish_step_never_leaves_a_wav_without_its_record(tmp_path, stop_at):
    _killed_at(tmp_path, stop_at)
    # At the moment of the crash: a DAW sees no WAV whose JSON is missing.
    for stem, exts in _visible(tmp_path).items():
        assert ".wav" not in exts or ".json" in exts, (stem, exts)
    # The next start: a committed take (its JSON out) is completed, anything else removed.
    writer = TakeWriter(tmp_path)
    writer.prepare()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    takes = _visible(tmp_path)
    if stop_at == "before-1":
        assert takes == {}
        return
    assert list(takes.values()) == [{".wav", ".png", ".json"}]
    (stem,) = takes
    assert re.fullmatch(r"\d{8}-\d{6}-\d+", stem)
    meta = json.loads((tmp_path / f"{stem}.json").read_text())
    assert meta["take"] == stem and meta["alpha"] == 0.75
    audio, sr = soundfile.read(tmp_path / meta["files"]["wav"], dtype="float32")
    assert sr == SR and len(audio) == SR and abs(audio).max() > 0.49
    assert Image.open(tmp_path / meta["files"]["png"]).size == (16, 8)
    assert writer.completed == ([] if stop_at == "after-3" else [stem])


def test_a_take_wav_without_a_record_gets_a_recovered_one(tmp_path):
    # As an older riffpad left it after a kill between audio and record.
    soundfile.write(tmp_path / "20261205-070102-4.wav", np.zeros(2205, np.float32), SR)
    Image.new("RGB", (4, 4)).save(tmp_path / "20261205-070102-4.png")
    soundfile.write(tmp_path / "my loop.wav", np.zeros(10, np.float32), SR)  # not a take
    writer = TakeWriter(tmp_path)
    writer.prepare()
    assert writer.recorded == ["20261205-070102-4"]
    meta = json.loads((tmp_path / "20261205-070102-4.json").read_text())
    assert meta["take"] == "20261205-070102-4"
    assert meta["files"] == {
        "wav": "20261205-070102-4.wav",
        "png": "20261205-070102-4.png",
        "json": "20261205-070102-4.json",
    }
    assert meta["audio"] == {"sample_rate": SR, "frames": 2205, "seconds": 0.05}
    assert "crash" in meta["recovered"]
    assert not (tmp_path / "my loop.json").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("stop_at", ["after-1", "after-2"])
def test_a_hard_quit_mid_publish_leaves_the_committed_take_to_be_completed(tmp_path, stop_at):
    """The second Ctrl-C removes the writer's own temporaries, but not those of a take
    whose record is out: they are what the next start completes it from."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    run = subprocess.run(
        [sys.executable, "-c", PAUSE_SCRIPT, str(tmp_path), stop_at, "hard-quit"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 130, run.stderr
    for exts in _visible(tmp_path).values():
        assert ".wav" not in exts or ".json" in exts
    TakeWriter(tmp_path).prepare()
    assert list(_visible(tmp_path).values()) == [{".wav", ".png", ".json"}]
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
