"""STFT kernels for phase reconstruction: the forward and inverse transforms Griffin-Lim
runs every iteration, on a grid of the padded FFT, with buffers reused across iterations.

Riffusion's frames hold 4410 windowed samples zero-padded to 17640; ``grid_consts`` builds
the constants for every ``grid``-th bin of that (grid 4: the window's own 4410-point DFT).
On the CPU the FFTs run in cache-sized blocks; on a GPU in one batch.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from riffpad.audio.mel import band_of, mel_basis, mel_pinv
from riffpad.audio.params import SpectrogramParams


@functools.lru_cache(maxsize=16)
def grid_consts(params: SpectrogramParams, device: str, grid: int = 1) -> dict[str, Any]:
    """Per-device constants: filterbank, window and the phase-retrieval grid.

    ``grid="window"``: the 4410-sample window's own DFT (10 Hz bins), when n_fft is a
    multiple of the window (Riffusion: 17640 = 4 * 4410, so every 4th zero-padded bin);
    ``grid="padded"``: Riffusion's zero-padded n_fft grid (2.5 Hz bins).
    """
    import torch

    fb, pinv = mel_basis(params), mel_pinv(params)
    step = grid
    if step < 1 or params.n_fft % step or params.n_fft // step < params.win_length:
        raise ValueError(f"grid step {step} does not divide n_fft {params.n_fft} into a window")
    gl_bins = (fb.shape[0] - 1) // step + 1
    # Mel filters sampled on this grid (scaled so coarse grids sum like the fine one), and
    # as sparse matrices where torch has them: each bin is in at most two filters, so the
    # sparse products are ~5x faster than the dense 4000x512 ones.
    fb_grid = torch.from_numpy((fb[::step][:gl_bins] * step).astype(np.float32)).to(device)
    # On the CPU only: dense products are cheap on a GPU, and cuSPARSE's reductions are not
    # guaranteed to run in the same order twice (the audio must be sample-exact).
    sparse = None
    if torch.device(device).type == "cpu":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR is in beta"
                sparse = (fb_grid.T.contiguous().to_sparse_csr(), fb_grid.to_sparse_csr())
        except (RuntimeError, NotImplementedError):
            sparse = None
    return {
        "fb": torch.from_numpy(fb.astype(np.float32)).to(device),
        "fb_grid": fb_grid,
        "fb_grid_sparse": sparse,
        # The same filters as (first filter, two weights) per bin, for the CPU kernels.
        "fb_band": band_of(fb_grid.numpy()) if torch.device(device).type == "cpu" else None,
        "pinv_gl": torch.from_numpy(pinv[::step].astype(np.float32)).to(device),
        "window": torch.hann_window(params.win_length, dtype=torch.float32, device=device),
        "n_gl": params.n_fft // step,
        "gl_bins": gl_bins,
    }


# Frames per FFT call, and per pass of the magnitude and momentum updates that follow each
# call: 64 rows keep the working set in a core's L2 cache (1-2 MiB), which made the big
# transforms up to twice as fast as one call over all frames.
_FFT_CHUNK = 64


def stft(x, c: dict[str, Any], hop: int, ws: Workspace, out, then=None):
    """STFT of ``x`` on the grid of ``c`` into ``out`` (frames, gl_bins), complex; ``ws``
    holds the reusable buffers; ``then(i, j, rows)`` runs on each block of rows i:j as soon
    as it is transformed, while it is still in cache."""
    import torch
    import torch.nn.functional as F

    win, bins = c["window"].shape[0], c["gl_bins"]
    # Reflect needs more samples than the pad; images under 6 columns get zeros instead.
    mode = "reflect" if x.shape[0] > win // 2 else "constant"
    padded = F.pad(x[None, None], (win // 2, win // 2), mode=mode)[0, 0]
    frames = padded.unfold(0, win, hop)
    # Windowed frames go straight into a zero-padded buffer (its tail stays zero), which
    # saves rfft's own padding copy. (rfft(out=) would copy all n // 2 + 1 bins.)
    chunk, buf = ws.chunk, ws.padded
    for i in range(0, frames.shape[0], chunk):
        block = frames[i : i + chunk]
        rows = buf[: block.shape[0]]
        torch.mul(block, c["window"], out=rows[:, :win])
        out[i : i + chunk] = torch.fft.rfft(rows)[:, :bins]
        if then is not None:
            then(i, i + block.shape[0], out[i : i + chunk])
    return out


class Workspace:
    """Buffers one Griffin-Lim run reuses on every iteration (no allocation, no zero-fill):
    the zero-padded frames for the forward FFT, on the CPU the zero-padded spectrum rows for
    the inverse (bins above ``gl_bins`` stay zero), two STFTs (this one and the previous,
    for momentum) and the spectrum to invert."""

    def __init__(self, c: dict[str, Any], n_frames: int, device):
        import torch

        on_cpu = torch.device(device).type == "cpu"
        # Blocks help the CPU's caches; a GPU wants one big batch (fewer launches).
        self.chunk = min(_FFT_CHUNK, n_frames) if on_cpu else max(1, n_frames)
        n, nb = c["n_gl"], c["n_gl"] // 2 + 1
        self.padded = torch.zeros(self.chunk, n, dtype=torch.float32, device=device)
        self.padded_spec = None
        if on_cpu:
            self.padded_spec = torch.zeros(self.chunk, nb, dtype=torch.complex64, device=device)
        shape = (n_frames, c["gl_bins"])
        self.stfts = [torch.empty(shape, dtype=torch.complex64, device=device) for _ in range(2)]
        self.spec = torch.empty(shape, dtype=torch.complex64, device=device)


def magnitude_of(z):
    import torch

    # sqrt(re^2 + im^2) in three passes: faster on CPU than hypot, itself a third faster
    # than complex abs. No overflow: int16-unit STFT values stay far below 1e19.
    re, im = z.real, z.imag
    return torch.addcmul(re * re, im, im).sqrt_()


def overlap_add(frames, hop: int):
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


def istft(spec, c: dict[str, Any], hop: int, envelope, ws: Workspace):
    """Least-squares inverse of ``_stft`` (windowed overlap-add / sum of squared windows)."""
    import torch

    win, n = c["window"].shape[0], c["n_gl"]
    n_frames = spec.shape[0]
    # On the CPU, spectrum rows go into a buffer whose upper bins stay zero: irfft would
    # otherwise zero-fill a padded copy of every block.
    chunk, padded = ws.chunk, ws.padded_spec
    k = win // hop
    direct = win % hop == 0 and spec.device.type == "cpu"
    if direct:  # window and overlap-add in one pass per block (see _overlap_add)
        summed = torch.zeros(n_frames + k - 1, hop, dtype=torch.float32, device=spec.device)
        pieces = c["window"].reshape(k, hop)
    else:
        frames = torch.empty(n_frames, win, dtype=torch.float32, device=spec.device)
    for i in range(0, n_frames, chunk):
        rows = spec[i : i + chunk]
        if padded is not None:
            padded[: rows.shape[0], : rows.shape[1]] = rows
            rows = padded[: rows.shape[0]]
        block = torch.fft.irfft(rows, n=n)[:, :win]
        if direct:
            blocks = block.reshape(block.shape[0], k, hop)
            for j in range(k):
                summed[i + j : i + j + block.shape[0]].addcmul_(blocks[:, j], pieces[j])
        else:
            torch.mul(block, c["window"], out=frames[i : i + chunk])
    start = win // 2
    audio = summed.reshape(-1) if direct else overlap_add(frames, hop)
    return audio[start : start + envelope.shape[0]] / envelope


@functools.lru_cache(maxsize=16)
def ola_envelope(params: SpectrogramParams, device: str, n_frames: int):
    import torch

    win, hop = params.win_length, params.hop_length
    window = torch.hann_window(win, dtype=torch.float32, device=device)
    env = overlap_add((window**2).expand(n_frames, win).contiguous(), hop)
    env = env[win // 2 : win // 2 + hop * (n_frames - 1)]
    return torch.clamp(env, min=1e-11)
