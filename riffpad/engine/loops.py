"""riffpad's own seed loops: short pieces of music synthesised here, so a model without
Riffusion's seed images (they live in Riffusion's code repository, not the model) still starts
from something rhythmic. Each loop is a whole number of bars that fills the 5.11 s clip
exactly (a 512 px spectrogram), so its tempo follows from its bar count and metre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riffpad.audio.clip import CLIP_SAMPLES, CLIP_SECONDS, SAMPLE_RATE

BEAT_BARS = 2  # two bars of 4/4 fill the clip exactly ...
BEAT_BPM = 60 * 4 * BEAT_BARS / CLIP_SECONDS  # ... at 93.93 BPM


def bpm_for(bars: int, beats_per_bar: int) -> float:
    """The tempo at which ``bars`` bars of ``beats_per_bar`` fill the clip exactly."""
    return 60 * beats_per_bar * bars / CLIP_SECONDS


def synth_beat(
    sample_rate: int = SAMPLE_RATE, samples: int = CLIP_SAMPLES, bars: int = BEAT_BARS
) -> np.ndarray:
    """A dry drum and bass loop in A minor that fills ``samples`` in whole bars of 4/4.

    Kick on 1 and 3 (and the "and" of 3), snare on 2 and 4, closed hats on eighths, a
    sub bass on the eighths following a i-VI-VII-i line. Deterministic (fixed noise seed).
    """
    rng = np.random.default_rng(94)
    out = np.zeros(samples, np.float64)
    beat = samples / (4 * bars)  # samples per quarter note
    t = np.arange(samples) / sample_rate

    def place(start: float, sound: np.ndarray, gain: float) -> None:
        i = round(start)
        n = min(len(sound), samples - i)
        out[i : i + n] += gain * sound[:n]

    def env(length_s: float, decay_s: float) -> np.ndarray:
        n = int(length_s * sample_rate)
        return np.exp(-np.arange(n) / (decay_s * sample_rate))

    # Kick: a sine falling from 150 Hz to 45 Hz.
    k_env = env(0.35, 0.09)
    k_t = np.arange(len(k_env)) / sample_rate
    freq = 45 + 105 * np.exp(-k_t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * k_env
    # Snare: noise plus a 190 Hz body.
    s_env = env(0.2, 0.05)
    s_t = np.arange(len(s_env)) / sample_rate
    snare = (0.7 * rng.standard_normal(len(s_env)) + 0.5 * np.sin(2 * np.pi * 190 * s_t)) * s_env
    # Hat: differenced noise (bright), very short.
    h_env = env(0.05, 0.012)
    hat = np.diff(rng.standard_normal(len(h_env) + 1)) * h_env

    roots = (55.0, 43.65, 49.0, 55.0)  # A1, F1, G1, A1: one per half bar
    for bar in range(bars):
        for q in range(4):
            pos = (bar * 4 + q) * beat
            if q in (0, 2):
                place(pos, kick, 0.9)
            else:
                place(pos, snare, 0.45)
            for half in (0, 1):
                place(pos + half * beat / 2, hat, 0.12 if half else 0.18)
        place((bar * 4 + 2.5) * beat, kick, 0.6)
    # Bass: eighth notes, a saw-ish tone with a short envelope.
    eighth = beat / 2
    for n in range(8 * bars):
        root = roots[(n // 4) % len(roots)]
        start = round(n * eighth)
        end = min(samples, round((n + 1) * eighth))
        seg = t[start:end] - t[start]
        tone = np.sin(2 * np.pi * root * seg) + 0.3 * np.sin(4 * np.pi * root * seg)
        out[start:end] += 0.35 * tone * np.exp(-seg / 0.18)
    return (out / np.max(np.abs(out)) * 0.9).astype(np.float32)


# -- a small drum machine and synth for the other loops --------------------------------------
def _env(n: int, decay_s: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    return np.exp(-np.arange(n) / (decay_s * sr))


def _voices(rng: np.random.Generator, sr: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    def t(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sr)) / sr

    kt = t(0.3)
    kick = np.sin(2 * np.pi * np.cumsum(48 + 110 * np.exp(-kt / 0.025)) / sr) * _env(len(kt), 0.08)
    st = t(0.18)
    snare = (0.8 * rng.standard_normal(len(st)) + 0.4 * np.sin(2 * np.pi * 200 * st)) * _env(
        len(st), 0.045
    )
    clap = rng.standard_normal(len(st)) * _env(len(st), 0.03)
    rim = np.sin(2 * np.pi * 1700 * t(0.04)) * _env(int(0.04 * sr), 0.008)
    hat = np.diff(rng.standard_normal(int(0.05 * sr) + 1)) * _env(int(0.05 * sr), 0.01)
    ohat = np.diff(rng.standard_normal(int(0.25 * sr) + 1)) * _env(int(0.25 * sr), 0.07)
    return {"kick": kick, "snare": snare, "clap": clap, "rim": rim, "hat": hat, "ohat": ohat}


def _tone(freqs: tuple[float, ...], seconds: float, decay_s: float, sr: int = SAMPLE_RATE):
    tt = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * f * tt) + 0.25 * np.sin(4 * np.pi * f * tt) for f in freqs)
    attack = np.minimum(1.0, tt / 0.005)
    return wave * attack * np.exp(-tt / decay_s) / len(freqs)


def _render(
    beats_per_bar: int,
    bars: int,
    hits: dict[str, list[float]],
    notes: list[tuple[float, tuple[float, ...], float, float, float]],
    seed: int,
    samples: int = CLIP_SAMPLES,
) -> np.ndarray:
    """``hits``: voice -> beat positions (0 = first beat, fractions allowed); ``notes``:
    (beat, frequencies, length in beats, decay s, gain). Positions repeat every bar when
    they are < beats_per_bar (a one-bar pattern) and are absolute otherwise."""
    rng = np.random.default_rng(seed)
    voices = _voices(rng)
    gains = {"kick": 0.9, "snare": 0.45, "clap": 0.4, "rim": 0.3, "hat": 0.13, "ohat": 0.1}
    out = np.zeros(samples, np.float64)
    beat = samples / (beats_per_bar * bars)

    def place(pos_beats: float, sound: np.ndarray, gain: float) -> None:
        i = round(pos_beats * beat)
        n = min(len(sound), samples - i)
        if n > 0:
            out[i : i + n] += gain * sound[:n]

    for voice, positions in hits.items():
        for pos in positions:
            starts = (
                [pos + b * beats_per_bar for b in range(bars)] if pos < beats_per_bar else [pos]
            )
            for start in starts:
                place(start, voices[voice], gains[voice])
    for pos, freqs, length, decay, gain in notes:
        place(pos, _tone(freqs, length * beat / SAMPLE_RATE, decay), gain)
    return (out / np.max(np.abs(out)) * 0.9).astype(np.float32)


A1, C2, D2, E2, F1, G1 = 55.0, 65.41, 73.42, 82.41, 43.65, 49.0


def synth_techno() -> np.ndarray:
    """Four on the floor, three bars of 4/4 (140.9 BPM): kick every beat, open hat on the
    off-beats, clap on 2 and 4, a rolling sixteenth-note bass on A."""
    bass = [(b + s / 4, (A1,), 0.22, 0.05, 0.35) for b in range(12) for s in (1, 2, 3)]
    hits = {"kick": [0, 1, 2, 3], "ohat": [0.5, 1.5, 2.5, 3.5], "clap": [1, 3]}
    hits["hat"] = [i / 4 for i in range(16) if i % 2]
    return _render(4, 3, hits, bass, seed=140)


def synth_waltz() -> np.ndarray:
    """Three bars of 3/4 (105.7 BPM): bass on one, chord stabs on two and three."""
    chords = [
        ((A1,), (220.0, 261.6, 329.6)),
        ((F1,), (174.6, 220.0, 261.6)),
        ((E2,), (164.8, 207.7, 246.9)),
    ]
    notes = []
    for bar, (root, chord) in enumerate(chords):
        notes.append((bar * 3, root, 1.0, 0.35, 0.5))
        notes += [(bar * 3 + b, chord, 0.8, 0.2, 0.3) for b in (1, 2)]
    hits = {"kick": [0], "rim": [1, 2], "hat": [0.5, 1.5, 2.5]}
    return _render(3, 3, hits, notes, seed=3)


def synth_shuffle() -> np.ndarray:
    """Two bars of 4/4 with a triplet swing (93.9 BPM): kick on 1 and 3, snare on 2 and 4,
    shuffled hats and a walking bass."""
    walk = (A1, C2, D2, E2, A1, G1, F1, E2)
    notes = [(i, (f,), 1.0, 0.3, 0.45) for i, f in enumerate(walk)]
    hits = {
        "kick": [0, 2, 2 + 2 / 3],
        "snare": [1, 3],
        "hat": [b + s for b in range(4) for s in (0, 2 / 3)],
    }
    return _render(4, 2, hits, notes, seed=12)


def synth_dub() -> np.ndarray:
    """Two bars of one-drop 4/4 (93.9 BPM): kick and rim together on three only, chord skanks
    on the off-beats, a deep bass line."""
    skank = [(b + 0.5, (220.0, 261.6, 329.6), 0.25, 0.06, 0.25) for b in range(8)]
    line = [(0, D2), (1.5, E2), (2, A1), (4, F1), (5.5, G1), (6, A1)]
    notes = skank + [(p, (f,), 1.4, 0.4, 0.55) for p, f in line]
    hits = {"kick": [2], "rim": [2], "hat": [b / 2 for b in range(8)]}
    return _render(4, 2, hits, notes, seed=1)


@dataclass(frozen=True)
class Loop:
    name: str
    feel: str
    bars: int
    beats_per_bar: int
    synth: object  # () -> float32 mono samples at 44.1 kHz, CLIP_SAMPLES long

    @property
    def bpm(self) -> float:
        return bpm_for(self.bars, self.beats_per_bar)

    @property
    def metre(self) -> str:
        return f"{self.beats_per_bar}/4"


LOOPS = {
    loop.name: loop
    for loop in (
        Loop("beat", "drum and bass groove in A minor", 2, 4, synth_beat),
        Loop("techno", "four on the floor", 3, 4, synth_techno),
        Loop("waltz", "waltz with chord stabs", 3, 3, synth_waltz),
        Loop("shuffle", "swung triplet shuffle, walking bass", 2, 4, synth_shuffle),
        Loop("dub", "one-drop reggae, off-beat skank", 2, 4, synth_dub),
    )
}
