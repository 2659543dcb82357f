"""CUDA graphs for the two big modules (UNet, VAE decoder): replay instead of relaunch.

An SD 1.5 UNet call is about a thousand kernel launches. On a fast GPU the launches, not the
arithmetic, set the pace of an eager call; a captured graph replays the same kernels in
one launch. The kernels are the very ones eager mode runs, so the numbers are the same:
this is a scheduling choice, not a change of maths.

One graph per input signature (shapes, dtypes, strides), captured on first use. Anything
the capture cannot take (CPU tensors, keyword arguments, a failed capture) runs eagerly.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

# Each graph keeps its own activations alive in a shared pool: keep the count bounded.
MAX_GRAPHS = 8


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor


def _signature(tensors: tuple[torch.Tensor, ...]) -> tuple:
    return tuple((t.shape, t.dtype, t.stride(), t.device) for t in tensors)


class GraphedCall:
    """``fn(*tensors) -> tensor``, replayed from a CUDA graph per input signature.

    The returned tensor is a fresh copy, so callers may keep it across calls.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], name: str = "call"):
        self.fn = fn
        self.name = name
        self._graphs: OrderedDict[tuple, _Captured | None] = OrderedDict()
        self._pool = None
        self.replays = 0
        self.captures = 0
        self.failures = 0

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        if not tensors or not all(isinstance(t, torch.Tensor) and t.is_cuda for t in tensors):
            return self.fn(*tensors)
        key = _signature(tensors)
        if key not in self._graphs:
            self._graphs[key] = self._capture(tensors)
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
        captured = self._graphs[key]
        self._graphs.move_to_end(key)
        if captured is None:  # this signature could not be captured: stay eager
            return self.fn(*tensors)
        for static, value in zip(captured.inputs, tensors, strict=True):
            static.copy_(value)
        captured.graph.replay()
        self.replays += 1
        return captured.output.clone()

    def _capture(self, tensors: tuple[torch.Tensor, ...]) -> _Captured | None:
        try:
            with torch.no_grad():
                inputs = tuple(t.clone() for t in tensors)
                # Warm up on a side stream (lazy init, workspace allocation stay out of
                # the graph), as torch.cuda.graphs' documentation does it.
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(2):
                        self.fn(*inputs)
                torch.cuda.current_stream().wait_stream(side)
                if self._pool is None:
                    self._pool = torch.cuda.graph_pool_handle()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self._pool):
                    output = self.fn(*inputs)
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"{self.name} returned {type(output).__name__}, not a tensor")
            self.captures += 1
            return _Captured(graph, inputs, output)
        except Exception as exc:  # any capture problem: run this signature eagerly
            self.failures += 1
            log.warning("CUDA graph capture of %s failed, running it eagerly: %s", self.name, exc)
            torch.cuda.synchronize()
            return None


@dataclass
class _UNetOutput:
    sample: torch.Tensor


class GraphedUNet:
    """Drop-in for ``unet(sample, t, encoder_hidden_states=...)``: ``.sample`` of a replay.

    Calls with other keyword arguments, or a timestep that is not a tensor, run eagerly.
    """

    def __init__(self, unet):
        self.unet = unet
        self.call = GraphedCall(
            lambda sample, t, text: unet(sample, t, encoder_hidden_states=text).sample, "UNet"
        )

    def __getattr__(self, name):  # config, dtype, device...: the wrapped module's
        return getattr(self.unet, name)

    def __call__(self, sample, timestep, encoder_hidden_states=None, **kwargs):
        if kwargs or not isinstance(timestep, torch.Tensor) or encoder_hidden_states is None:
            kwargs["encoder_hidden_states"] = encoder_hidden_states
            return self.unet(sample, timestep, **kwargs)
        t = timestep if timestep.device == sample.device else timestep.to(sample.device)
        return _UNetOutput(self.call(sample, t, encoder_hidden_states))
