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


@pytest.fixture
def single_thread():
    """Tiny-model renders are a few ms of work per op; on a shared 2-core machine torch's
    thread pool spends more time spinning than working (40x slower measured), so run them
    on one thread and restore the setting after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
