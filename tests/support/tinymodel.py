"""A tiny random-weight Stable Diffusion pipeline with Riffusion's real geometry.

Built from configs (no download), saved with ``save_pretrained`` in diffusers format
(safetensors) so tests load it through riffpad's real loader. Geometry matches
riffusion-model-v1: a 512x512 RGB image is a 4x64x64 latent (VAE scale factor 8), the text
encoder takes 77 tokens, and the scheduler is PNDM with Riffusion's own config. Channel counts
are tiny so a render takes well under a second on two CPU cores.

Run ``python tests/support/tinymodel.py DIR`` to write one to DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# riffusion-model-v1/scheduler/scheduler_config.json
RIFFUSION_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# Words that get a single BPE token each, so prompts in tests tokenize like real ones.
WORDS = (
    "dub bass jazz piano church bells on sunday drums funk guitar techno vocals "
    "lofi beat ambient pad synth slow fast"
).split()
EMBED_DIM = 32


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2/CLIP mapping)."""
    keep = list(range(ord("!"), ord("~") + 1))
    keep += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style vocab: every byte char bare and word-final, a few whole words, specials."""
    tokens: list[str] = []
    for c in _byte_chars():
        tokens += [c, c + "</w>"]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            merges.append((left, right))
            left = left + right
            if left not in tokens:
                tokens.append(left)
    merges = list(dict.fromkeys(merges))
    tokens += [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_components(seed: int = 0) -> dict:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = tiny_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    assert tokenizer.pad_token == EOS  # as in SD 1.5's tokenizer: pad with <|endoftext|>

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=EMBED_DIM,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=EMBED_DIM,
            bos_token_id=vocab[BOS],
            eos_token_id=vocab[EOS],
            pad_token_id=vocab[EOS],
        )
    )
    # Cross-attention only at 32x32 and no VAE mid-block attention: the speed of a test
    # render is set by attention over 64x64 = 4096 positions, so keep it off that level.
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=EMBED_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(4, 4, 8, 8),  # four blocks: scale factor 2**3 = 8
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=512,
        scaling_factor=0.18215,
        mid_block_add_attention=False,
    )
    # Freshly built layer norms are weight 1, bias 0, so every CLIP output token would have
    # mean exactly 0 and the prompt-weight mean rescale would divide 0 by 0. Trained models
    # never look like that: give the norms random affine parameters.
    with torch.no_grad():
        for module in text_encoder.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    scheduler = PNDMScheduler(**RIFFUSION_SCHEDULER_CONFIG)
    for m in (text_encoder, unet, vae):
        m.eval()
    return dict(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )


def _stand_in_seed(width: int = 512, height: int = 512) -> Image.Image:
    """A spectrogram-looking grey image (dark = loud): a few harmonics and beat pulses."""
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    level = 0.6 * (np.sin(y / 9.0) > 0.8) * (height - y) / height
    level = level + 0.5 * ((x % 64) < 6) * (y > height * 0.7)
    grey = (255 - 255 * np.clip(level, 0, 1)).astype(np.uint8)
    return Image.fromarray(np.broadcast_to(grey, (height, width))).convert("RGB")


def _stand_in_mask(width: int = 512, height: int = 512) -> Image.Image:
    """White (repaint) over the left half, black (keep) on the right."""
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255
    return Image.fromarray(mask, "L")


def save_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Write the tiny pipeline in diffusers format (safetensors) plus a seed_images/ folder."""
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    pipe = StableDiffusionPipeline(
        **build_components(seed),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    seeds = path / "seed_images"
    seeds.mkdir(exist_ok=True)
    # Stand-ins under Riffusion's ids so request files with the default id resolve.
    _stand_in_seed().save(seeds / "og_beat.png")
    _stand_in_seed(512, 512).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(seeds / "vibes.png")
    _stand_in_mask().save(seeds / "mask_left_half.png")
    # Small ones keep most tests fast: 128x128 px is a 4x16x16 latent.
    _stand_in_seed(128, 128).save(seeds / "small_beat.png")
    _stand_in_mask(128, 128).save(seeds / "small_mask.png")
    # Spectrograms are 512 px high (mel bins): a 64 px wide strip is a short clip with audio.
    _stand_in_seed(64, 512).save(seeds / "short_beat.png")
    return path


if __name__ == "__main__":
    print(save_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-riffusion"))


def pickle_weights(path: str | Path) -> Path:
    """Turn a saved tiny model into the December 2022 layout: every weight file a pickled
    state dict (``torch.save``) instead of safetensors, as riffusion-model-v1 ships."""
    from safetensors.torch import load_file

    path = Path(path)
    for part, name in (
        ("vae", "diffusion_pytorch_model"),
        ("unet", "diffusion_pytorch_model"),
        ("text_encoder", "pytorch_model"),
    ):
        st = next((path / part).glob("*.safetensors"))
        torch.save(load_file(st), path / part / f"{name}.bin")
        st.unlink()
    return path
