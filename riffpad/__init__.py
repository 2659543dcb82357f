"""riffpad: play Riffusion live from a Sony DualSense over raw HID."""

__version__ = "0.1.0"
