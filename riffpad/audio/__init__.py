"""Audio: Riffusion's spectrogram format, the converter both ways, levels, files, speakers.

A layer below the engine, the instrument and the jam; it imports none of them.

- ``clip``: sample rate and clip geometry (44.1 kHz, 441-sample hop, 512 columns).
- ``params``: ``SpectrogramParams`` and the spectrogram EXIF tags.
- ``mel``: the HTK mel filterbank, its pseudo-inverse, the mel error metric.
- ``analysis``: audio -> mel spectrogram -> image, and image -> mel spectrogram.
- ``stft``: the CPU/GPU STFT kernels phase reconstruction iterates on.
- ``phase``: phase starts (vocoder, PGHI) and the tuned Griffin-Lim.
- ``synthesis``: mel spectrogram or image -> audio (the plan and the entry points).
- ``loudness``: Riffusion's level normalisation.
- ``files``: WAV/PNG writing (atomic) and reading audio of any format.
- ``fades``: crossfade gains (the player's and the jam's seams).
- ``output``: the sounddevice output stream and the headless clock.
- ``player``: the instrument's take player. ``recorder``: the jam's tap and session WAV.

torch is imported only where it is used (analysis, stft, phase, synthesis), so the output
side loads without it.
"""
