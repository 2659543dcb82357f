"""Shared fakes and builders for the tests (and the benchmarks, via ``tests.support``).

Test files import from here, never from each other. The modules:

- reportgen: DualSense input reports built byte by byte from the reference layouts.
- fakehid: a simulated pad behind a fake hidraw backend, held to hidapi's contract.
- pad: pad scripts (fields over time at 250 reports/s), capture files, output-report decoding.
- engines: fake engines held to riffpad.engine.api.EngineAPI, and the request builder.
- instrument: replaying a capture through the whole instrument (jam included).
- tinymodel: a tiny random-weight Riffusion-geometry model (imports torch: only the
  integration tests and the benchmarks load it).
- calib_capture, controls_reference, riffusion_ref, fakehub, wireserver: one purpose each,
  described at their top.
"""
