"""Riffusion's generation pipeline on current diffusers and torch (its audio: riffpad.audio).

Exports are loaded lazily so ``import riffpad.engine`` (or ``riffpad --help``)
does not pay for importing diffusers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Engine": "riffpad.engine.engine",
    "EngineOptions": "riffpad.engine.engine",
    "RenderRequest": "riffpad.engine.engine",
    "RequestError": "riffpad.engine.engine",
    "Take": "riffpad.engine.engine",
    "Blend": "riffpad.engine.pipeline",
    "Leaf": "riffpad.engine.pipeline",
    "ModelError": "riffpad.engine.loader",
    "DEFAULT_MODEL": "riffpad.engine.loader",
    "SeedError": "riffpad.engine.seeds",
    "request_from_riffusion": "riffpad.engine.wire",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'riffpad.engine' has no attribute {name!r}")
