"""Riffusion's spectrogram parameters and the EXIF tags that carry them in an image.

Re-implemented from Riffusion's ``spectrogram_params.py``; the defaults are Riffusion's and
the clip geometry of ``riffpad.audio.clip``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from riffpad.audio.clip import SAMPLE_RATE, STEP_MS

if TYPE_CHECKING:
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
    sample_rate: int = SAMPLE_RATE
    step_size_ms: int = STEP_MS
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


def tag_image(
    image: Image.Image, params: SpectrogramParams | None = None, max_value: float | None = None
) -> Image.Image:
    """Write Riffusion's spectrogram EXIF tags into ``image`` (in place; returned), so the
    image describes itself as Riffusion's own spectrogram images do."""
    exif = image.getexif()
    for tag, value in (params or SpectrogramParams()).to_exif().items():
        exif[int(tag)] = value
    if max_value is not None:
        exif[int(ExifTags.MAX_VALUE)] = max_value
    return image
