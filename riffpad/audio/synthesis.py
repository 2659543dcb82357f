"""Synthesis: Riffusion mel spectrogram (or image) -> audio.

The mel inversion is a precomputed pseudo-inverse (what torchaudio >= 2.1 solves with
lstsq) instead of Riffusion's 200 rounds of SGD; the phase comes from
``riffpad.audio.phase``; the levels from ``riffpad.audio.loudness``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from riffpad.audio.analysis import default_device, spectrogram_from_image
from riffpad.audio.loudness import normalize_loudness
from riffpad.audio.params import (
    DEFAULT_MAX_VALUE,
    INT16_SCALE,
    SpectrogramParams,
    params_from_image,
)
from riffpad.audio.phase import griffin_lim
from riffpad.audio.stft import grid_consts


def default_schedule(params: SpectrogramParams, n_iter: int | None = None) -> tuple:
    """Griffin-Lim plan, ((grid step, iterations, fit, mel power), ...), for an effort of
    ``n_iter``.

    3/4 n iterations on the window's 10 Hz grid against the pseudo-inverse magnitude
    (cheap: 4410-point FFTs), then 5/16 n on the 5 Hz grid fitting the mel spectrogram
    itself ("mel") with squared multiplicative steps (power 2). For Riffusion's 32:
    4x24, 2x10m2. From the PGHI start that plan's mel error is at or below the earlier
    4x20, 2x16m from the vocoder start on the three recorded sounds the tests use, with
    6 fewer iterations on the 5 Hz grid (each costs about three on the 10 Hz grid).
    Grids the FFT size does not allow fall back to 1.
    """
    n = params.num_griffin_lim_iters if n_iter is None else n_iter
    grids = [g for g in (4, 2) if params.n_fft % g == 0 and params.n_fft // g >= params.win_length]
    coarse = (4 if 4 in grids else 1, max(1, (3 * n) // 4), "magnitude", 1.0)
    fit = (2 if 2 in grids else 1, max(1, (5 * n) // 16), "mel", 2.0)
    return (coarse, fit)


def audio_from_spectrogram(
    spectrogram: np.ndarray,
    params: SpectrogramParams | None = None,
    *,
    n_iter: int | None = None,
    seed: int = 0,
    device: str | None = None,
    normalize: bool = True,
    schedule: tuple | None = None,
    init: str | None = "pghi",
    kernels: bool | None = None,
) -> np.ndarray:
    """Mono float32 audio of a mel spectrogram (n_mels, frames): hop * (frames - 1) samples.

    Mel to linear magnitude by the precomputed pseudo-inverse, clipped at 0 (the
    minimum-norm least-squares solution torchaudio >= 2.1 computes), a phase-gradient start
    (``init="pghi"``; "vocoder": without the gradient term; None: random phase from
    ``seed``), fast Griffin-Lim
    as ``default_schedule`` plans it, then Riffusion's loudness normalisation unless
    ``normalize`` is False (the raw waveform, in [-1, 1] units, is returned then).
    Deterministic: the same input gives the same samples. ``kernels``: see
    ``riffpad.audio.phase.griffin_lim`` (None: the fused kernels on the CPU).
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
        for i, (step, iters, fit, *power) in enumerate(plan):
            c = grid_consts(params, device, step)
            magnitude = None
            if i == 0 or fit != "mel":
                magnitude = torch.relu(c["pinv_gl"] @ mel).T.contiguous()
            audio = griffin_lim(
                magnitude,
                params,
                n_iter=iters,
                seed=seed,
                device=device,
                grid=step,
                init=audio if i else init,
                mel=mel if fit == "mel" else None,
                mel_power=power[0] if power else 1.0,
                kernels=kernels,
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
    init: str | None = "pghi",
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
        init=init,
    )
