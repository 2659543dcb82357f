"""Riffusion's spectrogram format: audio <-> mel spectrogram <-> image.

Re-implemented from Riffusion's maths (``spectrogram_params.py``,
``spectrogram_converter.py``, ``util/image_util.py``, ``util/audio_util.py``) on plain
torch/numpy, without torchaudio: torchaudio's ``InverseMelScale`` changed its signature in
2.1 and is not published for current torch.

The image format is byte-compatible with Riffusion's: a mono spectrogram is an RGB image
(R=G=B), 512 mel bins high (low frequencies at the bottom), one column per 10 ms hop,
pixel = 255 - 255 * (S / max S) ** 0.25, with the parameters in custom EXIF tags.

Going back to audio differs from Riffusion in *how*, not in *what*: the mel inversion is a
precomputed pseudo-inverse (what torchaudio >= 2.1 solves with lstsq) instead of 200 rounds
of SGD, and the phase comes from fast Griffin-Lim (momentum 0.99, as torchaudio's) run on
the 4410-sample window's own DFT grid, which holds every fourth bin of Riffusion's
17640-point zero-padded grid; see ``griffin_lim``. Everything is seeded, so the same image
always gives the same samples.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Riffusion reads images with this scale; its docstring says the value "doesn't matter"
# because the audio is loudness-normalised afterwards.
DEFAULT_MAX_VALUE = 30e6

# Riffusion feeds pydub's integer samples to the STFT, so spectrogram values are in
# int16 units (magnitudes around 1e7), not in [-1, 1] units.
INT16_SCALE = 32768.0


class ExifTags(IntEnum):
    """Riffusion's custom EXIF tag IDs for spectrogram images."""

    SAMPLE_RATE = 11000
    STEREO = 11005
    STEP_SIZE_MS = 11010
    WINDOW_DURATION_MS = 11020
    PADDED_DURATION_MS = 11030
    NUM_FREQUENCIES = 11040
    MIN_FREQUENCY = 11050
    MAX_FREQUENCY = 11060
    POWER_FOR_IMAGE = 11070
    MAX_VALUE = 11080


@dataclass(frozen=True)
class SpectrogramParams:
    """Riffusion's spectrogram parameters, with its defaults."""

    stereo: bool = False
    sample_rate: int = 44100
    step_size_ms: int = 10
    window_duration_ms: int = 100
    padded_duration_ms: int = 400
    num_frequencies: int = 512
    min_frequency: int = 0
    max_frequency: int = 10000
    mel_scale_norm: str | None = None
    mel_scale_type: str = "htk"
    max_mel_iters: int = 200  # Riffusion's SGD rounds; kept for the format, unused here
    num_griffin_lim_iters: int = 32
    power_for_image: float = 0.25

    ExifTags = ExifTags

    def __post_init__(self) -> None:
        if self.stereo:
            raise ValueError("stereo spectrograms are not supported (riffpad is mono)")
        if self.mel_scale_type != "htk" or self.mel_scale_norm is not None:
            raise ValueError("only Riffusion's HTK mel scale without norm is supported")
        if not (self.hop_length > 0 and 0 < self.win_length <= self.n_fft):
            raise ValueError(f"bad STFT sizes in {self}")
        if not (0 <= self.min_frequency < self.max_frequency <= self.sample_rate / 2):
            raise ValueError(f"bad mel frequency range in {self}")
        if self.num_frequencies < 1 or self.power_for_image <= 0:
            raise ValueError(f"bad image parameters in {self}")

    @property
    def n_fft(self) -> int:
        return int(self.padded_duration_ms / 1000.0 * self.sample_rate)

    @property
    def win_length(self) -> int:
        return int(self.window_duration_ms / 1000.0 * self.sample_rate)

    @property
    def hop_length(self) -> int:
        return int(self.step_size_ms / 1000.0 * self.sample_rate)

    @property
    def n_stft(self) -> int:
        return self.n_fft // 2 + 1

    def num_samples(self, width: int) -> int:
        """Samples of audio for a spectrogram ``width`` frames wide (istft, center=True)."""
        return self.hop_length * (width - 1)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT of ``num_samples`` samples."""
        return 1 + num_samples // self.hop_length

    def to_exif(self) -> dict[int, Any]:
        """The EXIF tags Riffusion writes (MAX_VALUE is added by the image writer)."""
        return {
            ExifTags.SAMPLE_RATE: self.sample_rate,
            ExifTags.STEREO: self.stereo,
            ExifTags.STEP_SIZE_MS: self.step_size_ms,
            ExifTags.WINDOW_DURATION_MS: self.window_duration_ms,
            ExifTags.PADDED_DURATION_MS: self.padded_duration_ms,
            ExifTags.NUM_FREQUENCIES: self.num_frequencies,
            ExifTags.MIN_FREQUENCY: self.min_frequency,
            ExifTags.MAX_FREQUENCY: self.max_frequency,
            ExifTags.POWER_FOR_IMAGE: float(self.power_for_image),
        }

    @classmethod
    def from_exif(cls, exif: Mapping[int, Any]) -> SpectrogramParams:
        """Parameters from an image's EXIF; raises KeyError if a tag is missing."""
        return cls(
            sample_rate=int(exif[ExifTags.SAMPLE_RATE]),
            stereo=bool(exif[ExifTags.STEREO]),
            step_size_ms=int(exif[ExifTags.STEP_SIZE_MS]),
            window_duration_ms=int(exif[ExifTags.WINDOW_DURATION_MS]),
            padded_duration_ms=int(exif[ExifTags.PADDED_DURATION_MS]),
            num_frequencies=int(exif[ExifTags.NUM_FREQUENCIES]),
            min_frequency=int(exif[ExifTags.MIN_FREQUENCY]),
            max_frequency=int(exif[ExifTags.MAX_FREQUENCY]),
            power_for_image=float(exif[ExifTags.POWER_FOR_IMAGE]),
        )


def params_from_image(image: Image.Image) -> SpectrogramParams:
    """The image's EXIF parameters, or Riffusion's defaults when it carries none."""
    exif = image.getexif()
    if ExifTags.SAMPLE_RATE not in exif:
        return SpectrogramParams()
    try:
        return SpectrogramParams.from_exif(exif)
    except KeyError as e:
        raise ValueError(f"spectrogram EXIF is incomplete: tag {e} missing") from None


# --------------------------------------------------------------------------- mel scale


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_stft: int, n_mels: int, sample_rate: int, f_min: float, f_max: float
) -> np.ndarray:
    """Triangular HTK mel filters, shape (n_stft, n_mels), no normalisation.

    The construction of torchaudio's ``melscale_fbanks(norm=None, mel_scale="htk")``
    (equal to librosa's ``filters.mel(htk=True, norm=None)`` transposed), in float64.
    """
    all_freqs = np.linspace(0, sample_rate // 2, n_stft)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


@functools.lru_cache(maxsize=8)
def _mel_basis(params: SpectrogramParams) -> tuple[np.ndarray, np.ndarray]:
    """(filterbank restricted to the STFT bins it touches, pinv of its transpose).

    Only bins up to max_frequency carry mel energy (10 kHz: 4001 of 8821 bins), so both
    the analysis matmul and the inversion work on that slice.
    """
    fb = mel_filterbank(
        params.n_stft,
        params.num_frequencies,
        params.sample_rate,
        params.min_frequency,
        params.max_frequency,
    )
    used = np.flatnonzero(fb.any(axis=1))
    n_bins = int(used[-1]) + 1
    fb = fb[:n_bins]
    pinv = np.linalg.pinv(fb.T)
    pinv[np.abs(pinv) < np.finfo(np.float32).tiny] = 0.0  # no float32 subnormals
    return fb, pinv


@functools.lru_cache(maxsize=16)
def _torch_consts(params: SpectrogramParams, device: str, grid: int = 1) -> dict[str, Any]:
    """Per-device constants: filterbank, window and the phase-retrieval grid.

    ``grid="window"``: the 4410-sample window's own DFT (10 Hz bins), when n_fft is a
    multiple of the window (Riffusion: 17640 = 4 * 4410, so every 4th zero-padded bin);
    ``grid="padded"``: Riffusion's zero-padded n_fft grid (2.5 Hz bins).
    """
    import torch

    fb, pinv = _mel_basis(params)
    step = grid
    if step < 1 or params.n_fft % step or params.n_fft // step < params.win_length:
        raise ValueError(f"grid step {step} does not divide n_fft {params.n_fft} into a window")
    return {
        "fb": torch.from_numpy(fb.astype(np.float32)).to(device),
        "pinv_gl": torch.from_numpy(pinv[::step].astype(np.float32)).to(device),
        "window": torch.hann_window(params.win_length, dtype=torch.float32, device=device),
        "n_gl": params.n_fft // step,
        "gl_bins": (fb.shape[0] - 1) // step + 1,
    }


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- analysis


def mel_spectrogram(
    audio: np.ndarray, params: SpectrogramParams | None = None, device: str | None = None
) -> np.ndarray:
    """Riffusion's mel magnitude spectrogram of mono audio in [-1, 1], shape (n_mels, frames).

    torch.stft with n_fft 17640, hop 441 and a 4410 Hann window zero-padded to n_fft,
    center=True with reflect padding, magnitude, then the HTK mel matrix; the samples are
    scaled to int16 units first, as Riffusion's pydub input is.
    """
    import torch

    params = params or SpectrogramParams()
    device = device or default_device()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    # Reflect padding needs more than n_fft/2 samples; Riffusion would fail on shorter
    # clips, here they are padded with silence.
    min_len = params.n_fft // 2 + 1
    if audio.shape[0] < min_len:
        audio = np.pad(audio, (0, min_len - audio.shape[0]))
    c = _torch_consts(params, device)
    x = torch.from_numpy(audio).to(device) * INT16_SCALE
    spec = torch.stft(
        x,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=c["window"],
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    mag = spec[: c["fb"].shape[0]].abs()
    return (c["fb"].T @ mag).cpu().numpy()


def image_from_spectrogram(
    spectrogram: np.ndarray, params: SpectrogramParams | None = None
) -> Image.Image:
    """Riffusion's image of a mono mel spectrogram (n_mels, frames), EXIF included."""
    params = params or SpectrogramParams()
    spec = np.asarray(spectrogram, dtype=np.float32)
    if spec.ndim != 2 or spec.shape[0] != params.num_frequencies:
        raise ValueError(
            f"expected a spectrogram of shape ({params.num_frequencies}, frames), got {spec.shape}"
        )
    max_value = float(np.max(spec))
    scaled = spec / max_value if max_value > 0 else spec
    data = 255 - 255 * np.power(scaled, params.power_for_image)
    # Low frequencies at the bottom, grey RGB, as Riffusion's mode "L" -> "RGB".
    pixels = np.ascontiguousarray(data.astype(np.uint8)[::-1])
    image = Image.fromarray(pixels).convert("RGB")
    exif = image.getexif()
    for tag, value in params.to_exif().items():
        exif[int(tag)] = value
    exif[int(ExifTags.MAX_VALUE)] = max_value
    return image


def image_from_audio(
    audio: np.ndarray, params: SpectrogramParams | None = None, device: str | None = None
) -> Image.Image:
    """Spectrogram image of mono 44.1 kHz audio in [-1, 1]: 1 + len // 441 columns wide."""
    params = params or SpectrogramParams()
    return image_from_spectrogram(mel_spectrogram(audio, params, device), params)


def spectrogram_from_image(
    image: Image.Image,
    params: SpectrogramParams | None = None,
    *,
    max_value: float = DEFAULT_MAX_VALUE,
    use_exif_max_value: bool = False,
) -> np.ndarray:
    """Mel spectrogram (n_mels, width) of a Riffusion image, read from its red channel.

    ``max_value`` scales the result as Riffusion does (30e6, whatever the EXIF says);
    ``use_exif_max_value`` takes the image's MAX_VALUE tag instead when it has one.
    """
    params = params or SpectrogramParams()
    if image.height != params.num_frequencies:
        raise ValueError(
            f"spectrogram image must be {params.num_frequencies} pixels high, "
            f"got {image.width}x{image.height}"
        )
    if use_exif_max_value:
        max_value = float(image.getexif().get(ExifTags.MAX_VALUE, max_value))
    if image.mode != "RGB":
        image = image.convert("RGB")
    red = np.asarray(image, dtype=np.uint8)[::-1, :, 0].astype(np.float32)
    return max_value * np.power((255.0 - red) / 255.0, 1.0 / params.power_for_image)


# --------------------------------------------------------------------------- synthesis


def _frames(x, c: dict[str, Any], hop: int):
    """Reflect-padded, windowed frames (frames, win) of a 1-D signal (center=True)."""
    import torch.nn.functional as F

    win = c["window"].shape[0]
    # Reflect needs more samples than the pad; images under 6 columns get zeros instead.
    mode = "reflect" if x.shape[0] > win // 2 else "constant"
    padded = F.pad(x[None, None], (win // 2, win // 2), mode=mode)[0, 0]
    return padded.unfold(0, win, hop) * c["window"]


def _stft(x, c: dict[str, Any], hop: int):
    import torch

    return torch.fft.rfft(_frames(x, c, hop), n=c["n_gl"])[:, : c["gl_bins"]].contiguous()


def _overlap_add(frames, hop: int):
    """Sum of (frames, win) placed every ``hop`` samples: hop * (frames - 1) + win samples."""
    import torch
    import torch.nn.functional as F

    n_frames, win = frames.shape
    total = hop * (n_frames - 1) + win
    if win % hop == 0:
        # Riffusion's window is 10 hops long: ten shifted block sums beat a generic fold.
        k = win // hop
        blocks = frames.reshape(n_frames, k, hop)
        out = torch.zeros(n_frames + k - 1, hop, dtype=frames.dtype, device=frames.device)
        for j in range(k):
            out[j : j + n_frames] += blocks[:, j]
        return out.reshape(total)
    return F.fold(
        frames.T.contiguous()[None], output_size=(1, total), kernel_size=(1, win), stride=(1, hop)
    ).reshape(total)


def _istft(spec, c: dict[str, Any], hop: int, envelope):
    """Least-squares inverse of ``_stft`` (windowed overlap-add / sum of squared windows)."""
    import torch

    win = c["window"].shape[0]
    frames = torch.fft.irfft(spec, n=c["n_gl"])[:, :win] * c["window"]
    start = win // 2
    return _overlap_add(frames, hop)[start : start + envelope.shape[0]] / envelope


@functools.lru_cache(maxsize=16)
def _envelope(params: SpectrogramParams, device: str, n_frames: int):
    import torch

    win, hop = params.win_length, params.hop_length
    window = torch.hann_window(win, dtype=torch.float32, device=device)
    env = _overlap_add((window**2).expand(n_frames, win).contiguous(), hop)
    env = env[win // 2 : win // 2 + hop * (n_frames - 1)]
    return torch.clamp(env, min=1e-11)


def griffin_lim(
    magnitude,
    params: SpectrogramParams,
    *,
    n_iter: int | None = None,
    momentum: float = 0.99,
    seed: int = 0,
    device: str | None = None,
    grid: int = 1,
    init=None,
):
    """Fast Griffin-Lim; ``magnitude`` is a (frames, bins) tensor on ``grid`` (see
    ``_torch_consts``), the result a 1-D tensor of hop * (frames - 1) samples.

    Riffusion's frames hold 4410 windowed samples zero-padded to 17640, so its STFT bins
    at 2.5 Hz are a 4x interpolation of the 10 Hz bins of a 4410-point DFT of the same
    frames. Retrieving the phase on the 10 Hz bins constrains the same samples with a
    quarter of the FFT work. Momentum is applied as torchaudio and librosa do
    (``momentum / (1 + momentum)``). The random initial phase comes from ``seed``.
    """
    import torch

    device = device or default_device()
    c = _torch_consts(params, device, grid)
    hop = params.hop_length
    n_frames = magnitude.shape[0]
    if magnitude.shape[1] != c["gl_bins"]:
        raise ValueError(f"magnitude must have {c['gl_bins']} bins, got {magnitude.shape[1]}")
    envelope = _envelope(params, device, n_frames)
    if init is None:
        gen = torch.Generator(device=device).manual_seed(seed)
        phase = torch.rand(magnitude.shape, generator=gen, device=device) * (2 * math.pi)
        spec = torch.polar(magnitude, phase)
    else:
        rebuilt = _stft(init, c, hop)
        spec = rebuilt * (magnitude / (rebuilt.abs() + 1e-16))
    alpha = momentum / (1 + momentum)
    prev = None
    for _ in range(params.num_griffin_lim_iters if n_iter is None else n_iter):
        rebuilt = _stft(_istft(spec, c, hop, envelope), c, hop)
        target = rebuilt - alpha * prev if prev is not None and alpha else rebuilt
        # Keep the phase, impose the magnitude (one pass instead of normalise-then-scale).
        spec = target * (magnitude / (target.abs() + 1e-16))
        prev = rebuilt
    return _istft(spec, c, hop, envelope)


def default_schedule(params: SpectrogramParams, n_iter: int | None = None) -> tuple:
    """Griffin-Lim plan as ((grid step, iterations), ...), ``n_iter`` iterations in all.

    Most iterations run on the 2x zero-padded window grid (8820 points, half the FFT work
    of Riffusion's 17640), the last few on Riffusion's own grid, so the 2.5 Hz bins that the
    mel filters read are what the final iterations fit.
    """
    n = params.num_griffin_lim_iters if n_iter is None else n_iter
    fine = min(n, max(1, n // 4))
    coarse_step = 2 if params.n_fft % 2 == 0 and params.n_fft // 2 >= params.win_length else 1
    return ((coarse_step, n - fine), (1, fine)) if n - fine > 0 else ((1, n),)


def audio_from_spectrogram(
    spectrogram: np.ndarray,
    params: SpectrogramParams | None = None,
    *,
    n_iter: int | None = None,
    seed: int = 0,
    device: str | None = None,
    normalize: bool = True,
    schedule: tuple | None = None,
) -> np.ndarray:
    """Mono float32 audio of a mel spectrogram (n_mels, frames): hop * (frames - 1) samples.

    Mel to linear magnitude by the precomputed pseudo-inverse, clipped at 0 (the
    minimum-norm least-squares solution torchaudio >= 2.1 computes), then fast Griffin-Lim
    (``default_schedule``), then Riffusion's loudness normalisation unless ``normalize`` is
    False (the raw waveform, in [-1, 1] units, is returned then).
    """
    import torch

    params = params or SpectrogramParams()
    device = device or default_device()
    spec = np.asarray(spectrogram, dtype=np.float32)
    if spec.ndim != 2 or spec.shape[0] != params.num_frequencies or spec.shape[1] < 2:
        raise ValueError(
            f"expected a spectrogram of shape ({params.num_frequencies}, frames >= 2), "
            f"got {spec.shape}"
        )
    plan = schedule or default_schedule(params, n_iter)
    with torch.inference_mode():
        mel = torch.from_numpy(spec).to(device)
        audio = None
        for i, (step, iters) in enumerate(plan):
            c = _torch_consts(params, device, step)
            magnitude = torch.relu(c["pinv_gl"] @ mel).T.contiguous()
            audio = griffin_lim(
                magnitude,
                params,
                n_iter=iters,
                seed=seed + i,
                device=device,
                grid=step,
                init=audio,
            )
        audio = (audio / INT16_SCALE).cpu().numpy()
    assert audio.shape == (params.num_samples(spec.shape[1]),)
    return normalize_loudness(audio) if normalize else audio


def audio_from_image(
    image: Image.Image,
    params: SpectrogramParams | None = None,
    *,
    max_value: float = DEFAULT_MAX_VALUE,
    use_exif_max_value: bool = False,
    n_iter: int | None = None,
    seed: int = 0,
    device: str | None = None,
    normalize: bool = True,
    schedule: tuple | None = None,
) -> np.ndarray:
    """Audio of a Riffusion spectrogram image (params from its EXIF, else the defaults).

    A W-pixel-wide image gives hop * (W - 1) samples at params.sample_rate (512 px:
    225,351 samples, 5.11 s at 44.1 kHz), loudness-normalised as Riffusion does.
    """
    params = params or params_from_image(image)
    spec = spectrogram_from_image(
        image, params, max_value=max_value, use_exif_max_value=use_exif_max_value
    )
    return audio_from_spectrogram(
        spec,
        params,
        n_iter=n_iter,
        seed=seed,
        device=device,
        normalize=normalize,
        schedule=schedule,
    )


# --------------------------------------------------------------------------- loudness


def _rms_int(samples: np.ndarray) -> int:
    # audioop.rms truncates to an integer.
    return int(math.sqrt(float(np.mean(samples.astype(np.float64) ** 2))))


def _apply_gain(samples: np.ndarray, db: float) -> np.ndarray:
    # pydub apply_gain -> audioop.mul: scale, saturate to int16, truncate toward zero.
    scaled = samples.astype(np.float64) * (10.0 ** (db / 20.0))
    return np.trunc(np.clip(scaled, -32768, 32767))


def normalize_loudness(
    audio: np.ndarray, target_dbfs: float = -12.0, headroom_db: float = 0.1
) -> np.ndarray:
    """Riffusion's output levels: peak to int16 full scale, gain to -12 dBFS, then peaks
    to -0.1 dBFS; on the int16 grid as pydub works (dBFS = RMS relative to 32768, gains
    saturate at int16). Returns float32 in [-1, 1] (int16 / 32768), silence unchanged.
    """
    x = np.asarray(audio, dtype=np.float64)
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak == 0 or not np.isfinite(peak):
        return np.zeros(x.shape, dtype=np.float32)
    samples = np.trunc(x * (32767.0 / peak))  # audio_from_waveform(normalize=True)
    rms = _rms_int(samples)
    if rms > 0:
        samples = _apply_gain(samples, target_dbfs - 20 * math.log10(rms / INT16_SCALE))
    peak = np.max(np.abs(samples))
    if peak > 0:
        target_peak = INT16_SCALE * 10.0 ** (-headroom_db / 20.0)
        samples = _apply_gain(samples, 20 * math.log10(target_peak / peak))
    return (samples / INT16_SCALE).astype(np.float32)


def dbfs(audio: np.ndarray) -> float:
    """pydub's dBFS of float audio in [-1, 1]: RMS relative to full scale, in dB."""
    rms = math.sqrt(float(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike[str]):
    """Yield a temporary file object next to ``path``; rename it over ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to int16 (x * 32768, rounded, saturated)."""
    x = np.asarray(audio)
    if x.dtype == np.int16:
        return x
    return np.clip(np.round(x.astype(np.float64) * INT16_SCALE), -32768, 32767).astype(np.int16)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = 44100) -> None:
    """Write mono audio (float in [-1, 1] or int16) as 16-bit PCM WAV, atomically.

    The file is written aside in the same folder, fsynced and renamed over ``path``, so a
    reader never sees half a file and a failure leaves nothing behind.
    """
    import soundfile as sf

    data = to_int16(audio)
    if data.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {data.shape}")
    with _atomic_path(path) as fh:
        sf.write(fh, data, int(sample_rate), subtype="PCM_16", format="WAV")


def save_image(path: str | os.PathLike[str], image: Image.Image) -> None:
    """Save a spectrogram image as PNG with its EXIF, atomically (see ``write_wav``)."""
    with _atomic_path(path) as fh:
        image.save(fh, format="PNG", exif=image.getexif())


def read_audio(path: str | os.PathLike[str], sample_rate: int = 44100) -> np.ndarray:
    """Any file soundfile reads, mixed to mono (channel mean) and resampled to
    ``sample_rate`` (polyphase): float32 in [-1, 1]."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f"{path}: cannot read audio: {e}") from None
    mono = data.mean(axis=1)
    if rate != sample_rate and mono.size:
        g = math.gcd(int(rate), int(sample_rate))
        mono = resample_poly(mono, sample_rate // g, rate // g)
    return np.ascontiguousarray(mono, dtype=np.float32)


def mel_spectral_convergence(reference: np.ndarray, estimate: np.ndarray) -> float:
    """||S - a*S_hat||_F / ||S||_F with the best scale a (outputs are level-normalised)."""
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"shape mismatch {s.shape} vs {e.shape}")
    denom = float(np.sum(e * e))
    a = float(np.sum(s * e)) / denom if denom > 0 else 0.0
    return float(np.linalg.norm(s - a * e) / np.linalg.norm(s))
