"""Mel maths: Riffusion's HTK mel filterbank (no norm), its pseudo-inverse, the mel error."""

from __future__ import annotations

import functools

import numpy as np

from riffpad.audio.params import SpectrogramParams


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
def mel_basis(params: SpectrogramParams) -> np.ndarray:
    """The filterbank restricted to the STFT bins it touches, (bins, n_mels).

    Only bins below max_frequency carry mel energy (10 kHz: 4000 of 8821 bins), so both
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
    return fb[: int(used[-1]) + 1]


@functools.lru_cache(maxsize=8)
def mel_pinv(params: SpectrogramParams) -> np.ndarray:
    """Pseudo-inverse of the mel matrix fb^T, (bins, n_mels): fb (fb^T fb)^-1.

    The filters are linearly independent (condition number 6.6 for Riffusion's), so the
    minimum-norm least-squares inverse is this small 512x512 solve, no SVD needed.
    """
    fb = mel_basis(params)
    pinv = np.linalg.solve(fb.T @ fb, fb.T).T
    pinv[np.abs(pinv) < np.finfo(np.float32).tiny] = 0.0  # no float32 subnormals
    return pinv


def band_of(fb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The banded form ``project_mel`` reads of a (bins, n_mels) filterbank in which every
    bin is in at most two neighbouring filters, the filters in order of frequency: (lower
    filter per bin, non-decreasing; weights (bins, 2)). A bin in no filter takes the lower
    filter of the bin below it, with zero weights."""
    bins, n_mels = fb.shape
    used = fb != 0
    first = np.argmax(used, axis=1)
    in_one = used.any(axis=1)
    if np.any(np.diff(first[in_one]) < 0):
        raise ValueError("not a banded filterbank: filters are not in order of frequency")
    first = np.maximum.accumulate(np.where(in_one, first, 0))
    rows = np.arange(bins)
    nxt = np.minimum(first + 1, n_mels - 1)
    band_w = np.zeros((bins, 2), np.float32)
    band_w[:, 0] = fb[rows, first]
    band_w[:, 1] = np.where(first + 1 < n_mels, fb[rows, nxt], 0)
    if np.any(used.sum(axis=1) > (band_w != 0).sum(axis=1)):
        raise ValueError("not a banded filterbank: a bin is in filters that are not neighbours")
    return first.astype(np.int64), band_w


def mel_spectral_convergence(reference: np.ndarray, estimate: np.ndarray) -> float:
    """||S - a*S_hat||_F / ||S||_F with the best scale a (outputs are level-normalised)."""
    s = np.asarray(reference, dtype=np.float64)
    e = np.asarray(estimate, dtype=np.float64)
    if s.shape != e.shape:
        raise ValueError(f"shape mismatch {s.shape} vs {e.shape}")
    denom = float(np.sum(e * e))
    a = float(np.sum(s * e)) / denom if denom > 0 else 0.0
    return float(np.linalg.norm(s - a * e) / np.linalg.norm(s))
