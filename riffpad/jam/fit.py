"""Fit a rendered clip to a slot of whole bars: its magnitude spectrogram's time axis is
resampled (riffpad.audio.stretch) and Griffin-Lim rebuilds the phase, as for any clip.

The spectrogram comes from the take's image when it is one (no analysis, no loss); an
engine that hands over audio only (a remote one, a test's) is analysed to mel first.
"""

from __future__ import annotations

import numpy as np

from riffpad.audio.analysis import mel_spectrogram, spectrogram_from_image
from riffpad.audio.clip import SAMPLE_RATE
from riffpad.audio.params import SpectrogramParams, params_from_image
from riffpad.audio.stretch import fit_loop
from riffpad.audio.synthesis import audio_from_spectrogram


def _image_of(meta):
    """The take's spectrogram image and its params, or (None, None)."""
    take = meta[1] if isinstance(meta, tuple) and len(meta) == 2 else meta
    image = getattr(take, "image", None)
    if image is None:
        return None, None
    params = params_from_image(image)
    if image.height != params.num_frequencies or image.width < 2:
        return None, None
    return image, params


class SpectrogramFitter:
    """The jam driver's fitter (``natural``, ``fit``) for engine takes at ``sample_rate``."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, device: str | None = None) -> None:
        self.sample_rate = sample_rate
        self.device = device

    def _spec(self, audio, meta) -> tuple[np.ndarray, SpectrogramParams]:
        image, params = _image_of(meta)
        if image is not None and params.sample_rate == self.sample_rate:
            return spectrogram_from_image(image, params), params
        params = SpectrogramParams(sample_rate=self.sample_rate)
        return mel_spectrogram(np.asarray(audio, np.float32), params, self.device), params

    def natural(self, audio, meta) -> int:
        """Samples the clip spans unstretched."""
        image, params = _image_of(meta)
        if image is not None and params.sample_rate == self.sample_rate:
            return params.num_samples(image.width)
        return len(audio)

    def fit(self, audio, meta, length: int, tail: int) -> np.ndarray:
        """``length + tail`` samples: the clip stretched onto ``length``, its loop going on
        through the tail."""
        spec, params = self._spec(audio, meta)
        if audio is not None and _image_of(meta)[0] is None:
            spec = spec[:, : params.num_frames(len(audio))]  # not the short-clip padding
        frames = fit_loop(spec, params.hop_length, length, tail)
        out = audio_from_spectrogram(frames, params, device=self.device)
        return np.ascontiguousarray(out[: length + tail], dtype=np.float32)
