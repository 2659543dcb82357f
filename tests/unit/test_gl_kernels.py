"""The fused Griffin-Lim kernels against plain numpy statements of the same maths."""

from __future__ import annotations

import numpy as np
import pytest

from riffpad.audio import kernels as K
from riffpad.audio.mel import band_of, mel_basis
from riffpad.audio.params import SpectrogramParams

RNG = np.random.default_rng(7)


def complex_rows(rows, bins):
    z = RNG.standard_normal((rows, bins)) + 1j * RNG.standard_normal((rows, bins))
    return z.astype(np.complex64)


@pytest.mark.parametrize("threads", [1, 2])
def test_project_is_fast_griffin_lims_step(threads):
    x, prev = complex_rows(5, 33), complex_rows(5, 33)
    target = RNG.random((5, 33)).astype(np.float32)
    # The spectrum buffer is wider (bins above the mel range stay zero): whole rows.
    out = np.zeros((5, 40), np.complex64)
    p = prev.copy()
    f32 = np.float32
    K.launch(K.project, x.view(f32), p.view(f32), target, f32(0.4), out.view(f32), threads=threads)
    z = x - np.float32(0.4) * prev
    np.testing.assert_allclose(out[:, :33], z * target / np.abs(z), rtol=1e-5)
    assert not out[:, 33:].any()
    assert np.array_equal(p, x)  # prev now holds this iteration's STFT


@pytest.mark.parametrize("power", [1, 2, 1.5])
def test_project_mel_takes_one_multiplicative_step_towards_the_mel(power):
    fb = mel_basis(SpectrogramParams())[::2] * 2  # the 5 Hz grid's filters, banded
    band_bin, band_w = band_of(fb)
    x, prev = complex_rows(3, fb.shape[0]), complex_rows(3, fb.shape[0])
    mel = RNG.random((3, fb.shape[1])).astype(np.float32)
    eps = np.float32(1e-3)
    out = np.zeros((3, fb.shape[0] + 7), np.complex64)  # whole FFT rows, wider
    p = prev.copy()
    f32 = np.float32
    K.launch(
        K.project_mel,
        x.view(f32),
        p.view(f32),
        mel,
        band_bin,
        band_w,
        eps,
        f32(power),
        f32(0.3),
        out.view(f32),
        threads=2,
    )
    mag = np.abs(x).astype(np.float64)
    refit = (mag @ fb) @ fb.T + eps
    target = mag * ((mel @ fb.T) / refit) ** power
    z = x - np.float32(0.3) * prev
    got = out[:, : fb.shape[0]]
    np.testing.assert_allclose(np.abs(got), target, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(np.angle(got * np.conj(z)), 0, atol=1e-3)
    assert not out[:, fb.shape[0] :].any()
    assert np.array_equal(p, x)


def test_band_of_reads_back_the_filterbank_and_refuses_a_wider_one():
    fb = mel_basis(SpectrogramParams())
    band_bin, band_w = band_of(fb)
    rebuilt = np.zeros_like(fb)
    rows = np.arange(fb.shape[0])
    rebuilt[rows, band_bin] += band_w[:, 0]
    upper = band_bin + 1 < fb.shape[1]
    rebuilt[rows[upper], band_bin[upper] + 1] += band_w[upper, 1]
    np.testing.assert_array_equal(rebuilt, fb.astype(np.float32))
    wide = fb.copy()
    wide[100, band_bin[100] + 3] = 1  # a third filter, not a neighbour
    with pytest.raises(ValueError, match="not neighbours"):
        band_of(wide)
    shuffled = fb[:, ::-1]  # filters from high to low frequency
    with pytest.raises(ValueError, match="not in order"):
        band_of(shuffled)
    # A bin in no filter (here above the top one) keeps the order, with zero weights.
    gap = np.vstack([fb, np.zeros((3, fb.shape[1]))])
    first, weights = band_of(gap)
    assert (np.diff(first) >= 0).all() and not weights[-3:].any()


def test_overlap_add_and_frame_are_the_stft_framing():
    hop, win, n_frames = 4, 12, 9
    window = np.hanning(win).astype(np.float32)
    frames = RNG.standard_normal((n_frames, win + 6)).astype(np.float32)  # FFT rows are longer
    summed = np.zeros(hop * (n_frames - 1) + win, np.float32)
    K.launch(K.overlap_add, frames[:5], window, hop, 0, summed)
    K.launch(K.overlap_add, frames[5:], window, hop, 5, summed)  # a second block
    expected = np.zeros_like(summed)
    for r in range(n_frames):
        expected[r * hop : r * hop + win] += frames[r, :win] * window
    np.testing.assert_allclose(summed, expected, rtol=1e-6, atol=1e-6)

    # frame: centred frames of summed[offset:] * scale, reflected at both ends (numpy's
    # "reflect" is torch's), into the first win columns.
    offset, length = win // 2, hop * (n_frames - 1)
    scale = RNG.random(length).astype(np.float32)
    signal = summed[offset : offset + length] * scale
    padded = np.pad(signal, win // 2, mode="reflect")
    out = np.full((n_frames, win + 3), 7, np.float32)
    K.launch(K.frame, summed, offset, scale, window, hop, 0, out, threads=2)
    for r in range(n_frames):
        np.testing.assert_allclose(
            out[r, :win], padded[r * hop : r * hop + win] * window, rtol=1e-6
        )
    assert (out[:, win:] == 7).all()  # the zero padding is the caller's

    # Too short to reflect: zeros outside, as torch's constant pad.
    short = np.ones(3, np.float32)
    out = np.zeros((1, win), np.float32)
    K.launch(K.frame, short, 0, np.ones(3, np.float32), window, hop, 0, out)
    np.testing.assert_allclose(out[0], np.r_[np.zeros(6), np.ones(3), np.zeros(3)] * window)
