"""Phase reconstruction: phase starts and the tuned fast Griffin-Lim.

Going back to audio differs from Riffusion in *how*, not in *what*: the phase comes from
fast Griffin-Lim (momentum 0.99, as torchaudio's) run on coarse grids of Riffusion's
17640-point zero-padded DFT (see ``riffpad.audio.stft``), started from a phase guess
instead of noise: a phase-locked vocoder whose lobes are tilted by the phase-gradient
theorem (the frequency-direction half of PGHI, Prusa et al. 2017, without the heap: every
bin is integrated from its nearest spectral peak, vectorised). Everything is seeded: the
same input gives the same samples.
"""

from __future__ import annotations

import math

from riffpad.audio.analysis import default_device
from riffpad.audio.params import SpectrogramParams
from riffpad.audio.stft import Workspace, grid_consts, istft, magnitude_of, ola_envelope, stft


def vocoder_phase(magnitude, params: SpectrogramParams, grid: int, *, gradient: bool = False):
    """A phase-locked vocoder guess of the phase of ``magnitude`` (frames, bins on ``grid``).

    Each frame's spectral peaks get a frequency from a parabola through their log
    magnitudes; every bin follows its nearest peak, its phase advancing by that frequency
    times the hop from frame to frame and locked to the peak's (a Hann lobe has one phase
    across it). Griffin-Lim started here needs far fewer iterations than from noise.
    ``gradient``: add ``_lobe_phase`` (the PGHI start), which tilts each lobe by its onset
    time instead of locking it flat.
    """
    import torch

    n_frames, n_bins = magnitude.shape
    n = params.n_fft // grid
    log_mag = torch.log(magnitude + 1e-6 * float(magnitude.max()) + 1e-30)
    left, mid, right = log_mag[:, :-2], log_mag[:, 1:-1], log_mag[:, 2:]
    is_peak = torch.zeros(magnitude.shape, dtype=torch.bool, device=magnitude.device)
    is_peak[:, 1:-1] = (mid >= left) & (mid > right)
    curve = (left - 2 * mid + right).clamp(max=-1e-12)
    offset = torch.zeros_like(magnitude)
    offset[:, 1:-1] = (0.5 * (left - right) / curve).clamp(-0.5, 0.5)
    bins = torch.arange(n_bins, device=magnitude.device).expand(n_frames, n_bins)
    # Nearest peak of every bin: last peak at or below it, first at or above it.
    below = torch.cummax(torch.where(is_peak, bins, -1), dim=1).values
    above = torch.where(is_peak, bins, n_bins).flip(1).cummin(dim=1).values.flip(1)
    far = 4 * n_bins
    d_below = torch.where(below >= 0, bins - below, far)
    d_above = torch.where(above < n_bins, above - bins, far)
    owner = torch.where(d_below <= d_above, below, above)
    owner = torch.where((owner < 0) | (owner >= n_bins), bins, owner)
    peak_freq = torch.gather(bins + offset, 1, owner)  # in bins of this grid
    advance = (2 * math.pi * params.hop_length / n) * peak_freq.double()
    phase = torch.cumsum(advance, dim=0) - advance  # frame 0 starts at 0
    phase = torch.gather(phase, 1, owner)
    if gradient:
        phase = phase + _lobe_phase(log_mag, owner, params, n)
    # From frame-centre phase to this module's frame-start convention.
    phase = phase - (2 * math.pi * (params.win_length // 2) / n) * bins.double()
    return torch.remainder(phase, 2 * math.pi).to(magnitude.dtype)


# Riffusion's Hann window as a Gaussian exp(-pi t^2 / gamma): gamma = 0.25645 L^2 (the fit
# Prusa et al. give for Hann windows of length L, in samples).
HANN_GAMMA = 0.25645


def _lobe_phase(log_mag, owner, params: SpectrogramParams, n: int):
    """Phase of every bin relative to its peak, integrated along frequency from the phase
    gradient theorem for Gaussian windows (Prusa, Balazs, Sondergaard 2017): the phase's
    frequency derivative is -gamma times the log magnitude's time derivative (frame-centre
    phase). Zero for steady tones (a locked lobe); an onset between frames tilts its lobe.
    """
    import torch

    gamma = HANN_GAMMA * params.win_length**2
    d_time = torch.zeros_like(log_mag, dtype=torch.float64)
    d_time[1:-1] = (log_mag[2:] - log_mag[:-2]).double() / (2 * params.hop_length)
    d_time[0] = (log_mag[1] - log_mag[0]).double() / params.hop_length
    d_time[-1] = (log_mag[-1] - log_mag[-2]).double() / params.hop_length
    step = (-gamma / n) * d_time  # phase change per bin
    along = torch.zeros_like(step)
    along[:, 1:] = torch.cumsum(0.5 * (step[:, 1:] + step[:, :-1]), dim=1)
    return along - torch.gather(along, 1, owner)


def _polar(magnitude, phase, out):
    """magnitude * exp(i phase) into ``out``: torch.polar is about 5x slower on the CPU."""
    import torch

    torch.view_as_real(out)[..., 0] = magnitude * torch.cos(phase)
    torch.view_as_real(out)[..., 1] = magnitude * torch.sin(phase)
    return out


STARTS = ("vocoder", "pghi")


def _start_phase(magnitude, params: SpectrogramParams, grid: int, init, seed: int, device):
    """The start phase ``griffin_lim``'s ``init`` asks for, or None when ``init`` is audio."""
    import torch

    if init is not None and not isinstance(init, str):
        return None
    if init is not None and init not in STARTS:
        raise ValueError(f"unknown start {init!r}: None (random), {' or '.join(STARTS)}, or audio")
    if magnitude is None:
        raise ValueError(f"the {init or 'random'} start needs a magnitude")
    if init is None:
        gen = torch.Generator(device=device).manual_seed(seed)
        return torch.rand(magnitude.shape, generator=gen, device=device) * (2 * math.pi)
    return vocoder_phase(magnitude, params, grid, gradient=init == "pghi")


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
    mel=None,
    mel_power: float = 1.0,
    kernels: bool | None = None,
):
    """Fast Griffin-Lim on ``grid`` (see ``grid_consts``); returns a 1-D tensor of
    hop * (frames - 1) samples in int16 units.

    ``magnitude`` (frames, bins): the target STFT magnitude. With ``mel`` (n_mels, frames)
    given instead, each iteration fits the mel spectrogram itself: the rebuilt magnitude
    takes one multiplicative (Lee-Seung) step towards fb^T |X| = mel, which keeps the
    detail the mel bins cannot see instead of imposing the smooth pseudo-inverse.
    ``mel_power`` raises that step's ratio to a power: 2 fits in fewer iterations (on the
    5 Hz grid; on the 10 Hz grid speech diverged with it), 3 diverges.

    ``init``: None (random phase from ``seed``), "vocoder" (``vocoder_phase``), "pghi"
    (the vocoder start with ``_lobe_phase``'s phase-gradient term) or audio to start from.
    Momentum is applied as torchaudio and librosa do (m / (1 + m)).

    ``kernels``: run the CPU loop of ``riffpad.audio.kernels`` (the default on the CPU)
    instead of torch operations (the default on a GPU). Both compute the same iteration.

    Riffusion's frames hold 4410 windowed samples zero-padded to 17640, so its STFT bins
    at 2.5 Hz are a 4x interpolation of the 10 Hz bins of a 4410-point DFT of the same
    frames: grid 4 constrains the same samples with a quarter of the FFT work, grid 1 fits
    the bins the mel filters read.
    """
    import torch

    device = device or default_device()
    c = grid_consts(params, device, grid)
    hop = params.hop_length
    on_cpu = torch.device(device).type == "cpu"
    if kernels and not on_cpu:
        raise ValueError(f"the fused kernels run on the CPU, not {device}")
    if kernels or (kernels is None and on_cpu):
        return _griffin_lim_cpu(
            magnitude, params, c, grid, n_iter, momentum, seed, init, mel, mel_power
        )
    if mel is not None:
        fb = c["fb_grid"]
        # (frames, bins): fb @ mel, the numerator of every step.
        if c["fb_grid_sparse"] is None:
            fitted = mel.T @ fb.T
        else:
            fitted = torch.sparse.mm(c["fb_grid_sparse"][1], mel).T.contiguous()
        eps = 1e-6 * float(fitted.max()) + 1e-30

        def refit(mag):  # fb fb^T |X|, (frames, bins)
            if c["fb_grid_sparse"] is None:
                return (mag @ fb) @ fb.T
            fb_t, fb_s = c["fb_grid_sparse"]
            mel_of_mag = torch.sparse.mm(fb_t, mag.T.contiguous())
            return torch.sparse.mm(fb_s, mel_of_mag).T

        def target_magnitude(rebuilt_mag, i=0, j=None):
            # Frames i:j. In place, on one contiguous buffer: mag * fitted / (refit + eps).
            out = refit(rebuilt_mag).contiguous().add_(eps)
            torch.div(fitted[i:j], out, out=out)
            if mel_power != 1:
                out.pow_(mel_power)
            return out.mul_(rebuilt_mag)

        n_frames = mel.shape[1]
    else:
        if magnitude.shape[1] != c["gl_bins"]:
            raise ValueError(f"magnitude needs {c['gl_bins']} bins, got {magnitude.shape[1]}")
        n_frames = magnitude.shape[0]
    env = ola_envelope(params, device, n_frames)
    ws = Workspace(c, n_frames, device)
    spec, prev = ws.spec, None
    start = _start_phase(magnitude, params, grid, init, seed, device)
    if start is not None:
        _polar(magnitude, start, out=spec)
    else:
        prev = stft(init, c, hop, ws, out=ws.stfts[1])
        mag = target_magnitude(magnitude_of(prev)) if mel is not None else magnitude
        torch.mul(prev, mag / (magnitude_of(prev) + 1e-16), out=spec)
    alpha = momentum / (1 + momentum)

    def update(i: int, j: int, rebuilt):
        # Frames i:j of the next spectrum: keep the phase, impose the magnitude (one pass
        # instead of normalise-then-scale), in place. Frames are independent here, so this
        # runs block by block right after each block's FFT.
        mag = target_magnitude(magnitude_of(rebuilt), i, j) if mel is not None else magnitude[i:j]
        out = spec[i:j]
        if prev is not None and alpha:
            torch.add(rebuilt, prev[i:j], alpha=-alpha, out=out)
            scale = magnitude_of(out).add_(1e-16)
            torch.div(mag, scale, out=scale)
            out.mul_(scale)
        else:
            torch.mul(rebuilt, mag / (magnitude_of(rebuilt) + 1e-16), out=out)

    for i in range(params.num_griffin_lim_iters if n_iter is None else n_iter):
        # The whole spectrum is inverted before the first block is overwritten. The two
        # STFT buffers alternate: this iteration's and the previous one's (momentum).
        audio = istft(spec, c, hop, env, ws)
        prev = stft(audio, c, hop, ws, out=ws.stfts[i % 2], then=update)
    return istft(spec, c, hop, env, ws)


def _griffin_lim_cpu(magnitude, params, c, grid, n_iter, momentum, seed, init, mel, mel_power):
    """``griffin_lim`` on the CPU with the fused kernels: per block of frames, an inverse
    FFT and one overlap-add pass; then per block, one framing pass, a forward FFT and one
    projection pass. The spectrum keeps all n // 2 + 1 bins (those above the mel range
    stay zero), so the inverse FFT reads it in place."""
    import numpy as np
    import torch

    from riffpad.audio import kernels as K

    threads = torch.get_num_threads()
    hop, n, bins = params.hop_length, c["n_gl"], c["gl_bins"]
    window = c["window"].numpy()
    win = window.shape[0]
    alpha = np.float32(momentum / (1 + momentum))
    if mel is not None:
        band_bin, band_w = c["fb_band"]
        mel_t = mel.T.contiguous().numpy()  # (frames, n_mels)
        upper = np.minimum(band_bin + 1, mel_t.shape[1] - 1)
        fitted_max = (mel_t[:, band_bin] * band_w[:, 0] + mel_t[:, upper] * band_w[:, 1]).max()
        eps = np.float32(1e-6 * float(fitted_max) + 1e-30)
        n_frames = mel_t.shape[0]

        power = np.float32(mel_power)

        def project(rebuilt, prev, i, j, out):
            fit = (mel_t[i:j], band_bin, band_w, eps, power, alpha, out)
            K.launch(K.project_mel, rebuilt, prev, *fit, threads=threads)
    else:
        if magnitude.shape[1] != bins:
            raise ValueError(f"magnitude needs {bins} bins, got {magnitude.shape[1]}")
        target = magnitude.contiguous().numpy()
        n_frames = target.shape[0]

        def project(rebuilt, prev, i, j, out):
            K.launch(K.project, rebuilt, prev, target[i:j], alpha, out, threads=threads)

    start = _start_phase(magnitude, params, grid, init, seed, "cpu")
    scale = (1 / ola_envelope(params, "cpu", n_frames)).numpy()
    # Equal blocks of at most 128 frames (513 frames: 5 of 103). Blocks of 100-170 frames
    # measured 5-8% faster than 64 here (2 threads); a last block of one frame is waste.
    blocks = -(-n_frames // 128)
    chunk = -(-n_frames // blocks)
    # Whole rows everywhere (the kernels read the first ``bins``): strided rows are slower.
    spec = torch.zeros(n_frames, n // 2 + 1, dtype=torch.complex64)
    spec_f = spec.numpy().view(np.float32)
    prev_f = np.zeros((n_frames, 2 * bins), np.float32)  # previous STFT, for momentum
    padded = torch.zeros(chunk, n)  # columns past the window stay zero
    summed = np.zeros(hop * (n_frames - 1) + win, np.float32)

    def analyse(signal, offset, signal_scale):
        # STFT block by block, each block projected while it is in cache.
        for i in range(0, n_frames, chunk):
            j = min(i + chunk, n_frames)
            block = padded[: j - i]
            K.launch(
                K.frame,
                signal,
                offset,
                signal_scale,
                window,
                hop,
                i,
                block.numpy(),
                threads=threads,
            )
            spectrum = torch.fft.rfft(block)  # (out= is slower: torch copies into it)
            project(spectrum.numpy().view(np.float32), prev_f[i:j], i, j, spec_f[i:j])

    def synthesise():
        summed.fill(0)
        for i in range(0, n_frames, chunk):
            j = min(i + chunk, n_frames)
            frames = torch.fft.irfft(spec[i:j], n=n).numpy()
            K.overlap_add(frames, window, hop, i, summed)  # one thread

    if start is not None:
        _polar(magnitude, start, out=spec[:, :bins])
    else:
        audio = init.contiguous().numpy()
        analyse(audio, 0, np.ones(audio.shape[0], np.float32))  # prev = its STFT
    for _ in range(params.num_griffin_lim_iters if n_iter is None else n_iter):
        synthesise()
        analyse(summed, win // 2, scale)
    synthesise()
    return torch.from_numpy(summed[win // 2 : win // 2 + scale.shape[0]] * scale)
