"""Load time and peak memory of an SD 1.5-size UNet (860 M parameters, fp32, random weights),
with and without ``accelerate`` installed (diffusers then skips the random init it overwrites).

    python benchmarks/bench_load.py DIR        # builds DIR once (3.4 GB), then loads it
Run it once without accelerate installed and once with it; compare the two printed lines.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}


def build(folder: Path) -> None:
    from diffusers import UNet2DConditionModel

    if (folder / "diffusion_pytorch_model.safetensors").exists():
        return
    UNet2DConditionModel(**SD15_UNET).save_pretrained(folder, safe_serialization=True)


def load(folder: Path) -> dict:
    t0 = time.perf_counter()
    from diffusers import UNet2DConditionModel

    t1 = time.perf_counter()
    UNet2DConditionModel.from_pretrained(folder)
    t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "accelerate": importlib.util.find_spec("accelerate") is not None,
        "import_s": round(t1 - t0, 2),
        "load_s": round(t2 - t1, 2),
        "peak_rss_mib": round(peak_mib),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(load(Path(sys.argv[2]))))
        sys.exit(0)
    folder = Path(sys.argv[1])
    build(folder)
    runs = []
    for _ in range(2):  # each in a fresh process; the page cache is warm after the first
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps(runs))
