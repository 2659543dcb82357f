"""Tempo for jam mode: where the bars are, and who says how fast they go.

``bars`` is the pure maths (samples per bar, the bar count that needs the least stretch,
bar lines); ``sources`` holds the tempo sources (fixed, tap); ``link`` follows Ableton Link
(optional extra ``riffpad[link]``), ``midiclock`` a MIDI clock (extra ``riffpad[midi]``).
Every source answers ``bpm()`` (None: free-running at the clip's natural length) and
``playing()``; none of them imports the jam.
"""
