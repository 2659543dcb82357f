"""Sample rate and clip geometry, defined once (Riffusion's format).

One image column is one hop of 10 ms (441 samples at 44.1 kHz); a W-column image holds
``HOP * (W - 1)`` samples (istft with center=True), so 512 px make 225,351 samples, 5.11 s.
"""

from __future__ import annotations

SAMPLE_RATE = 44100
STEP_MS = 10  # one image column
HOP = SAMPLE_RATE * STEP_MS // 1000  # 441 samples
CLIP_COLUMNS = 512


def samples_for_width(width: int) -> int:
    """Samples of audio a ``width``-column spectrogram holds: HOP * (width - 1)."""
    return HOP * (width - 1)


def width_for_samples(samples: int) -> int:
    """Columns of the spectrogram of ``samples`` samples (a centred STFT): 1 + samples // HOP."""
    return 1 + samples // HOP


CLIP_SAMPLES = samples_for_width(CLIP_COLUMNS)  # 225351
CLIP_SECONDS = CLIP_SAMPLES / SAMPLE_RATE  # 5.11 s
