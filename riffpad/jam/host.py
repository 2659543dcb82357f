"""What the jam needs of the instrument that runs it: the whole interface, as callbacks.

The instrument builds one ``JamHost`` and hands it to ``JamSession``; the jam never sees
the instrument itself. ``job`` values are opaque to the jam: it passes them back to
``render`` and ``save_clip``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JamHost:
    # Messages and the status line.
    note: Callable[..., None]  # (text, level=logging.INFO): the status view and the log
    show_status: Callable[[str], None]  # the jam's line in the status view
    # The one engine: a one-shot fire waiting behind the take in progress (taken over by
    # the jam, or None), then "is the engine free and has the pad spoken yet?".
    take_waiting_fire: Callable[[], Any | None]
    engine_free: Callable[[float], bool]  # (timeout s)
    # Clips: a job for what the pad plays now, what a clip depends on, one render.
    next_job: Callable[[], Any]
    state_key: Callable[[], Hashable]
    # (job, audio) -> take (audio, sample_rate, image, ...); audio False: the image only,
    # take.audio None (a bar-grid jam rebuilds the audio from the stretched image itself).
    render: Callable[[Any, bool], Any]
    # A clip that played becomes a take: (job, take, audio at the jam's rate, seconds its
    # render took, the jam's metadata) -> the take's name, None if it could not be saved
    # (which shows on the pad like a failed fire).
    save_clip: Callable[[Any, Any, Any, float, dict], str | None]
    failed: Callable[[str], None]  # a generation failed: said, counted, red on the pad
    # The speaker: the one-shot player lets go of it for the jam and takes it back.
    release_speaker: Callable[[], None]
    reclaim_speaker: Callable[[], None]
