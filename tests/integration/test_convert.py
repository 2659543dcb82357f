"""``riffpad convert`` both ways, on recorded sound (Debian sound-theme-freedesktop)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from riffpad.audio import analysis, mel, params
from riffpad.cli import main

SOUND = Path("/usr/share/sounds/freedesktop/stereo/complete.oga")  # 44.1 kHz stereo vorbis


@pytest.fixture
def recorded():
    if not SOUND.exists():
        pytest.skip(f"{SOUND} missing: apt-get install sound-theme-freedesktop")
    return SOUND


def run(*args: str):
    return CliRunner().invoke(main, ["convert", *args])


def test_audio_to_png_to_wav(tmp_path, recorded):
    png, wav = tmp_path / "clip.png", tmp_path / "clip.wav"
    result = run(str(recorded), str(png))
    assert result.exit_code == 0, result.output
    frames = sf.info(recorded).frames
    with Image.open(png) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (1 + frames // 441, 512)
        px = np.asarray(image)
        assert np.array_equal(px[..., 0], px[..., 2])
        exif = image.getexif()
        assert params.SpectrogramParams.from_exif(exif) == params.SpectrogramParams()
        assert exif[11080] > 1e6  # MAX_VALUE in int16 units, as Riffusion writes it
        target = analysis.spectrogram_from_image(image)
        width = image.width

    result = run(str(png), str(wav))
    assert result.exit_code == 0, result.output
    info = sf.info(wav)
    assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
    assert info.frames == 441 * (width - 1)
    audio, _ = sf.read(wav, dtype="float32")
    assert np.max(np.abs(audio)) == pytest.approx(10 ** (-0.1 / 20), abs=2 / 32768)
    assert mel.mel_spectral_convergence(target, analysis.mel_spectrogram(audio)) < 0.2
    assert sorted(os.listdir(tmp_path)) == ["clip.png", "clip.wav"]


def test_png_options_seed_and_iterations(tmp_path, recorded):
    png = tmp_path / "c.png"
    assert run(str(recorded), str(png)).exit_code == 0
    a, b, c = (tmp_path / n for n in ("a.wav", "b.wav", "c.wav"))
    assert run(str(png), str(a), "--iterations", "4").exit_code == 0
    assert run(str(png), str(b), "--iterations", "4").exit_code == 0
    assert run(str(png), str(c), "--iterations", "4", "--seed", "5").exit_code == 0
    assert a.read_bytes() == b.read_bytes()  # deterministic
    assert a.read_bytes() != c.read_bytes()  # random start
    d = tmp_path / "d.wav"
    assert run(str(png), str(d), "--iterations", "4", "--seed", "5").exit_code == 0
    assert c.read_bytes() == d.read_bytes()  # seeded


def test_any_rate_and_channels_become_44k1_mono_frames(tmp_path):
    t = np.arange(22050 * 2) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3
    src = tmp_path / "in.flac"
    sf.write(src, stereo, 22050)
    assert run(str(src), str(tmp_path / "out.png")).exit_code == 0
    with Image.open(tmp_path / "out.png") as image:
        assert image.size == (1 + 88200 // 441, 512)


def test_wrong_pairs_and_broken_files(tmp_path, recorded):
    result = run(str(recorded), str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and "between an image and audio" in result.output
    result = run(str(recorded), str(tmp_path / "x.jpg"))
    assert result.exit_code == 2 and "unknown file type" in result.output
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    result = run(str(broken), str(tmp_path / "out.wav"))
    assert result.exit_code == 1 and "broken.png" in result.output
    small = tmp_path / "small.png"
    Image.new("RGB", (10, 100)).save(small)
    result = run(str(small), str(tmp_path / "out.wav"))
    assert result.exit_code == 1 and "512 pixels high" in result.output
    assert sorted(os.listdir(tmp_path)) == ["broken.png", "small.png"]  # nothing half-made


def _tone_file(path: Path, freq: float, seconds: float = 0.5, rate: int = 22050) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate)
    return path


def test_batch_converts_both_ways_into_one_folder_in_one_process(tmp_path, recorded):
    out = tmp_path / "out"
    out.mkdir()
    a = _tone_file(tmp_path / "a.flac", 440)
    single = tmp_path / "single.png"
    assert run(str(recorded), str(single)).exit_code == 0
    result = run(str(a), str(recorded), str(single), "--out-dir", str(out), "--iterations", "4")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["a.png", "complete.png", "single.wav"]
    assert "converted 3 of 3 files" in result.output
    # The batch writes what the one-file form writes, byte for byte.
    assert (out / "complete.png").read_bytes() == single.read_bytes()
    one = tmp_path / "one.wav"
    assert run(str(single), str(one), "--iterations", "4").exit_code == 0
    assert (out / "single.wav").read_bytes() == one.read_bytes()
    with Image.open(out / "a.png") as image:
        assert image.size == (1 + 22050 // 441, 512)


def test_batch_goes_on_past_a_bad_file_and_names_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    good = _tone_file(tmp_path / "good.wav", 330)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    result = run(str(broken), str(good), "--out-dir", str(out))
    assert result.exit_code == 1
    assert "broken.png" in result.output and "converted 1 of 2 files" in result.output
    assert sorted(os.listdir(out)) == ["good.png"]  # nothing half-made for the bad one


def test_batch_refuses_clashing_names_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "x").mkdir()
    out.mkdir()
    a = _tone_file(tmp_path / "clip.wav", 440)
    b = _tone_file(tmp_path / "x" / "clip.flac", 550)
    result = run(str(a), str(b), "--out-dir", str(out))
    assert result.exit_code == 2 and "would both be written to" in result.output
    # An output that would replace an input.
    result = run(str(a), "--out-dir", str(tmp_path))
    assert result.exit_code == 0  # clip.wav -> clip.png beside it is fine
    result = run(str(tmp_path / "clip.png"), str(a), "--out-dir", str(tmp_path))
    assert result.exit_code == 2 and "is also an input" in result.output
    result = run(str(a), "--out-dir", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run(str(a), str(b), str(a))  # three paths without --out-dir
    assert result.exit_code == 2 and "--out-dir" in result.output
    assert os.listdir(out) == []
