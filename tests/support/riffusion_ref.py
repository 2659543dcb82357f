"""Riffusion 0.0.5's own pipeline, imported as a reference on current libraries.

Riffusion is installed as the reference, not as a dependency:
``pip install --no-deps riffusion==0.0.5``. Its ``riffusion_pipeline.py`` needs two names that
current libraries dropped; a minimal shim provides them for the import only:
``diffusers.pipeline_utils`` (removed in diffusers 0.22; DiffusionPipeline lives in
``diffusers.pipelines``) and ``transformers.CLIPFeatureExtractor`` (removed in transformers 5;
``CLIPImageProcessor`` replaced it). Neither is used on the path under test.
"""

from __future__ import annotations

import importlib
import sys
import types

# Render requests both the CPU and the CUDA checks compare with Riffusion's pipeline.
CASES = {
    "alpha-mid-cfg": dict(
        prompt_a="church bells on sunday",
        prompt_b="(jazz piano:1.3) [drums]",
        alpha=0.37,
        seed_a=42,
        seed_b=123,
        steps=8,
        guidance=7.0,
        guidance_b=9.0,
        denoising=0.75,
        denoising_b=0.6,
    ),
    "cfg-off": dict(
        prompt_a="dub bass",
        prompt_b="lofi beat",
        alpha=0.5,
        seed_a=7,
        seed_b=8,
        steps=6,
        guidance=1.0,
        denoising=0.8,
    ),
    "alpha-0": dict(
        prompt_a="techno",
        prompt_b="ambient pad",
        alpha=0.0,
        seed_a=3,
        seed_b=4,
        steps=5,
        guidance=5.0,
        denoising=0.7,
    ),
    "alpha-1": dict(
        prompt_a="techno",
        prompt_b="(ambient pad)",
        alpha=1.0,
        seed_a=3,
        seed_b=4,
        steps=5,
        guidance=5.0,
        denoising=0.7,
    ),
}


def import_riffusion():
    """(riffusion.riffusion_pipeline, riffusion.datatypes), imported through the shim."""
    import diffusers
    import transformers

    shim = types.ModuleType("diffusers.pipeline_utils")
    shim.DiffusionPipeline = diffusers.DiffusionPipeline
    saved = sys.modules.get("diffusers.pipeline_utils")
    had_fe = hasattr(transformers, "CLIPFeatureExtractor")
    sys.modules["diffusers.pipeline_utils"] = shim
    if not had_fe:
        transformers.CLIPFeatureExtractor = transformers.CLIPImageProcessor
    try:
        pipeline_mod = importlib.import_module("riffusion.riffusion_pipeline")
        datatypes = importlib.import_module("riffusion.datatypes")
    finally:
        if saved is None:
            sys.modules.pop("diffusers.pipeline_utils", None)
        else:
            sys.modules["diffusers.pipeline_utils"] = saved
        if not had_fe:
            del transformers.CLIPFeatureExtractor
    return pipeline_mod, datatypes


def riffusion_pipeline(pipeline_mod, core, scheduler):
    """Riffusion's RiffusionPipeline on the very modules of a riffpad ``RiffusionCore``."""
    unet = getattr(core.unet, "unet", core.unet)  # the module under a CUDA-graph wrapper
    pipe = pipeline_mod.RiffusionPipeline(
        vae=core.vae,
        text_encoder=core.text_encoder,
        tokenizer=core.tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def riffusion_image(riffusion_modules, pipe, req, init, mask=None):
    """Riffusion's image for a riffpad RenderRequest (text prompts), through its riffuse."""
    _, dt = riffusion_modules
    inputs = dt.InferenceInput(
        start=dt.PromptInput(
            prompt=req.prompt_a, seed=req.seed_a, denoising=req.denoising, guidance=req.guidance
        ),
        end=dt.PromptInput(
            prompt=req.prompt_b,
            seed=req.seed_b,
            denoising=req.denoising_b if req.denoising_b is not None else req.denoising,
            guidance=req.guidance_b if req.guidance_b is not None else req.guidance,
        ),
        alpha=req.alpha,
        num_inference_steps=req.steps,
    )
    return pipe.riffuse(inputs, init, mask_image=mask)
