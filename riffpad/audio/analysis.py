"""Analysis: mono audio -> Riffusion's mel spectrogram -> image, and an image back to mel.

The image format is byte-compatible with Riffusion's: a mono spectrogram is an RGB image
(R=G=B), 512 mel bins high (low frequencies at the bottom), one column per 10 ms hop,
pixel = 255 - 255 * (S / max S) ** 0.25, with the parameters in custom EXIF tags.
Re-implemented on plain torch/numpy from Riffusion's ``spectrogram_converter.py`` and
``util/image_util.py``, without torchaudio.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

from riffpad.audio.mel import mel_basis
from riffpad.audio.params import (
    DEFAULT_MAX_VALUE,
    INT16_SCALE,
    ExifTags,
    SpectrogramParams,
    tag_image,
)


@functools.lru_cache(maxsize=16)
def _analysis_consts(params: SpectrogramParams, device: str) -> dict[str, Any]:
    import torch

    return {
        "fb": torch.from_numpy(mel_basis(params).astype(np.float32)).to(device),
        "window": torch.hann_window(params.win_length, dtype=torch.float32, device=device),
    }


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
    c = _analysis_consts(params, device)
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
    return tag_image(image, params, max_value)


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
