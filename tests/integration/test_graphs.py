"""CUDA-graph wrappers off the GPU: they must be exact pass-throughs (the GPU side is in
test_cuda.py, run on a CUDA machine)."""

from __future__ import annotations

import torch

from riffpad.engine.graphs import GraphedCall, GraphedUNet


def test_graphed_call_runs_cpu_tensors_eagerly():
    calls = []

    def fn(x, y):
        calls.append((x, y))
        return x * 2 + y

    graphed = GraphedCall(fn, "fn")
    x, y = torch.arange(4.0), torch.ones(4)
    assert torch.equal(graphed(x, y), x * 2 + y)
    assert len(calls) == 1 and calls[0][0] is x  # the caller's tensors, no copies
    assert (graphed.captures, graphed.replays, graphed.failures) == (0, 0, 0)


def test_graphed_unet_is_a_drop_in_on_the_cpu(engine):
    unet = engine.core.unet
    wrapped = GraphedUNet(unet)
    assert wrapped.config is unet.config and wrapped.dtype == unet.dtype
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, 8, 8, generator=gen)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen)
    t = torch.tensor(501)
    with torch.no_grad():
        expected = unet(sample, t, encoder_hidden_states=text).sample
        assert torch.equal(wrapped(sample, t, encoder_hidden_states=text).sample, expected)
        # Keyword arguments the graph does not know run the module itself.
        out = wrapped(sample, t, encoder_hidden_states=text, return_dict=False)[0]
    assert torch.equal(out, expected)
    assert wrapped.call.captures == 0


def test_engine_uses_no_graphs_off_cuda(tiny_model_dir):
    from riffpad.engine import Engine, EngineOptions, RenderRequest

    engine = Engine.load(tiny_model_dir, device="cpu", options=EngineOptions(cuda_graphs=True))
    assert engine.core.graphs == {}
    take = engine.render(RenderRequest("dub bass", steps=2, seed_image="small_beat"), audio=False)
    assert take.params["cuda_graphs"] is False


def test_compile_option_wraps_unet_and_decoder_once(tiny_model_dir):
    from riffpad.engine import Engine, EngineOptions, loader

    dev = torch.device("cpu")
    loaded = loader.load_components(tiny_model_dir, dev, torch.float32, None)
    plain_decoder = loaded.vae.decoder
    first = Engine(loaded, "tiny", EngineOptions(compile=True))
    second = Engine(loaded, "tiny", EngineOptions(compile=True))
    for engine in (first, second):  # torch.compile is lazy: nothing is compiled yet
        assert engine.core.unet._orig_mod is loaded.unet
        assert engine.core.vae.decoder._orig_mod is plain_decoder  # not compiled twice
