"""Fused CPU kernels for Griffin-Lim (numba): one pass over memory where torch needs several.

On the CPU, two thirds of a Griffin-Lim iteration were element-wise work around the FFTs:
momentum, magnitude, division, scaling, windowing, overlap-add and the copies between
them, each its own pass over the spectrum or the frames. These kernels do each step's
element-wise work in one pass, over the rows in parallel, so the FFTs are most of what is
left. Complex spectra are read and written as interleaved float32 (``view(np.float32)``),
which the compiler vectorises; callers pass whole rows (C-contiguous, the FFT's full
width) and the kernels read the first ``bins`` of each, as strided rows do not
vectorise (twice as slow). Every output element is computed in a fixed order, so the
output does not depend on the thread count.

Compiled on first use and cached on disk (numba's cache: beside this file, or the user's
cache folder when that is read-only; with neither, compiled in each process).
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import prange

_JIT = {"nogil": True, "parallel": True, "error_model": "numpy"}


def _jit(**options):
    """numba.njit with the on-disk cache where some folder can hold it; where none can
    (read-only install, no writable home), numba refuses cache=True, so compile in each
    process instead."""

    def wrap(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, **options)(fn)

    return wrap


_TINY = np.float32(1e-16)

# numba's "workqueue" threading layer (the fallback where neither OpenMP nor TBB loads)
# aborts the process if two threads launch parallel kernels at once.
_launch = threading.Lock()


def launch(kernel, *args, threads: int = 1):
    """Run ``kernel`` on ``threads`` threads (numba's count is per calling thread)."""
    with _launch:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        kernel(*args)


@_jit(**_JIT)
def project(rebuilt, prev, target, alpha, out):
    """out = z * target / |z| with z = rebuilt - alpha * prev, then prev = rebuilt.

    Fast Griffin-Lim's step (momentum as torchaudio's) on rows of bins given as
    interleaved float32 (re, im); ``target`` (rows, bins). ``prev`` is updated in place,
    so it holds this iteration's STFT for the next one.
    """
    rows, bins = target.shape
    for i in prange(rows):
        x, p, o, t = rebuilt[i], prev[i], out[i], target[i]
        for k in range(bins):
            xr, xi = x[2 * k], x[2 * k + 1]
            zr, zi = xr - alpha * p[2 * k], xi - alpha * p[2 * k + 1]
            p[2 * k], p[2 * k + 1] = xr, xi
            s = t[k] / (np.sqrt(zr * zr + zi * zi) + _TINY)
            o[2 * k], o[2 * k + 1] = zr * s, zi * s


@_jit(**_JIT)
def project_mel(rebuilt, prev, target, band_bin, band_w, eps, power, alpha, out):
    """``project`` towards a magnitude that fits the mel spectrogram: each row's target is
    |X| * (fb target / (fb fb^T |X| + eps)) ** power, one multiplicative (Lee-Seung) step;
    ``target`` (rows, n_mels) is the mel spectrogram's frames for these rows. The
    filterbank fb is banded, its filters in order (see ``riffpad.audio.mel.band_of``)."""
    rows, n_mels = target.shape
    bins = band_bin.shape[0]
    filters = band_bin[bins - 1] + 2
    # Bins whose lower filter is m: starts[m]:starts[m + 1]. Summing fb^T |X| segment by
    # segment keeps the sums in registers (a scatter into mel[] waits on its own stores).
    starts = np.searchsorted(band_bin, np.arange(filters))
    for i in prange(rows):
        x, p, o, t = rebuilt[i], prev[i], out[i], target[i]
        mag = np.empty(bins, np.float32)
        for k in range(bins):
            mag[k] = np.sqrt(x[2 * k] * x[2 * k] + x[2 * k + 1] * x[2 * k + 1])
        mel = np.empty(filters, np.float32)  # fb^T |X|
        carry = np.float32(0)  # the upper filter's share of the segment below
        for m in range(filters - 1):
            lower, upper = np.float32(0), np.float32(0)
            for k in range(starts[m], starts[m + 1]):
                lower += band_w[k, 0] * mag[k]
                upper += band_w[k, 1] * mag[k]
            mel[m] = carry + lower
            carry = upper
        mel[filters - 1] = carry
        gain = np.empty(bins, np.float32)
        for k in range(bins):
            b = band_bin[k]
            fitted = band_w[k, 0] * t[b] + band_w[k, 1] * t[min(b + 1, n_mels - 1)]  # fb target
            gain[k] = fitted / (band_w[k, 0] * mel[b] + band_w[k, 1] * mel[b + 1] + eps)
        if power == 2:
            for k in range(bins):
                gain[k] *= gain[k]
        elif power != 1:
            for k in range(bins):
                gain[k] = gain[k] ** power
        for k in range(bins):
            xr, xi = x[2 * k], x[2 * k + 1]
            zr, zi = xr - alpha * p[2 * k], xi - alpha * p[2 * k + 1]
            p[2 * k], p[2 * k + 1] = xr, xi
            s = mag[k] * gain[k] / (np.sqrt(zr * zr + zi * zi) + _TINY)
            o[2 * k], o[2 * k + 1] = zr * s, zi * s


@_jit(**{**_JIT, "parallel": False})
def overlap_add(frames, window, hop, first, summed):
    """Add rows of ``frames`` (their first len(window) samples), windowed, into ``summed``
    at (first + row) * hop. One thread: rows overlap, and row by row the inner loop is a
    plain vectorised multiply-add (8x faster than a parallel loop over output blocks)."""
    win = window.shape[0]
    for r in range(frames.shape[0]):
        row, out = frames[r], summed[(first + r) * hop : (first + r) * hop + win]
        for t in range(win):
            out[t] += row[t] * window[t]


@_jit(**_JIT)
def frame(summed, offset, scale, window, hop, first, out):
    """Windowed frames of the signal summed[offset + t] * scale[t] (t < len(scale)),
    centred (padded by half a window, reflected; with zeros where it is too short to
    reflect) into the first len(window) columns of ``out``: rows first, first + 1, ..."""
    rows, win, n = out.shape[0], window.shape[0], scale.shape[0]
    half = win // 2
    reflect = n > half
    for r in prange(rows):
        start = (first + r) * hop - half
        o = out[r]
        if 0 <= start and start + win <= n:  # inside: no reflection, vectorised
            x, sc = summed[offset + start : offset + start + win], scale[start : start + win]
            for t in range(win):
                o[t] = x[t] * sc[t] * window[t]
            continue
        for t in range(win):
            i = start + t
            if reflect:
                if i < 0:
                    i = -i
                elif i >= n:
                    i = 2 * (n - 1) - i
            if 0 <= i < n:
                o[t] = summed[offset + i] * scale[i] * window[t]
            else:
                o[t] = 0
