"""riffpad: play Riffusion live from a Sony DualSense over raw HID."""

__version__ = "0.1.0"

# The checkpoint riffpad plays unless told otherwise (Hugging Face Hub id). Here, not in
# riffpad.engine, so the CLI and doctor name it without importing torch.
DEFAULT_MODEL = "riffusion/riffusion-model-v1"
