"""Jam mode: continuous, gapless music that follows the pad.

``grid`` is the pure, sample-indexed clip timeline (its seams use ``riffpad.audio.fades``);
``stream`` pulls blocks from it for the audio output; ``driver`` keeps clips rendered ahead
of the stream; ``riffpad.audio.output`` and ``riffpad.audio.recorder`` feed the speaker (or
a clock, headless) and the session recorder from the same blocks; ``session`` is what the
instrument talks to.
"""
