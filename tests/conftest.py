import pytest
from tinymodel import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight Riffusion-geometry model in diffusers format (see tinymodel.py)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-riffusion"))


@pytest.fixture(scope="session")
def engine(tiny_model_dir):
    """The tiny model loaded through riffpad's real loader, on the CPU."""
    from riffpad.engine import Engine

    return Engine.load(tiny_model_dir, device="cpu")
