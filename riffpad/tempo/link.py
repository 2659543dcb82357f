"""``--link``: follow an Ableton Link session (tempo, beat, phase, start/stop) as a peer
that can also set the tempo (tap tempo on the pad).

Needs the optional extra ``riffpad[link]`` (aalink, GPL-3.0, on Ableton's Link, GPL-2.0+);
riffpad itself stays MIT and imports it only here, only with ``--link``. aalink runs on an
asyncio loop: this source keeps one in a daemon thread and only reads Link's state.
Link finds peers by multicast on every interface (tests run it in a private network
namespace that holds only loopback).
"""

from __future__ import annotations

import asyncio
import threading

from riffpad.tempo.bars import check_bpm


class LinkUnavailable(RuntimeError):
    """aalink is not installed (the message says how to get it)."""


class LinkTempo:
    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4, *, start_stop: bool = True):
        try:
            import aalink
        except ImportError:
            raise LinkUnavailable(
                "--link needs aalink (GPL): pip install 'riffpad[link]'"
            ) from None
        self.beats_per_bar = beats_per_bar
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="riffpad-link", daemon=True
        )
        self._thread.start()

        async def make():
            link = aalink.Link(check_bpm(bpm), self._loop)
            link.quantum = beats_per_bar
            link.start_stop_sync_enabled = start_stop
            link.enabled = True
            return link

        self.link = asyncio.run_coroutine_threadsafe(make(), self._loop).result(5.0)

    # -- the tempo source --------------------------------------------------------------
    def bpm(self) -> float | None:
        return float(self.link.tempo)

    def playing(self) -> bool:
        return bool(self.link.playing)

    def set_bpm(self, bpm: float) -> None:
        """Propose a tempo to the session (every peer follows)."""
        self.link.tempo = check_bpm(bpm)

    def set_playing(self, playing: bool) -> None:
        self.link.playing = playing

    @property
    def peers(self) -> int:
        return int(self.link.num_peers)

    def beat(self) -> float:
        """The session's beat now."""
        return float(self.link.beat)

    def phase(self) -> float:
        """Beats into the bar now (0 <= phase < beats_per_bar)."""
        return float(self.link.phase)

    def downbeat_in(self) -> float:
        """Seconds until the session's next downbeat."""
        left = (self.beats_per_bar - self.phase()) % self.beats_per_bar
        return left * 60.0 / self.bpm()

    def close(self) -> None:
        async def off():
            self.link.enabled = False

        try:
            asyncio.run_coroutine_threadsafe(off(), self._loop).result(2.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(2.0)
