import subprocess
import sys

from click.testing import CliRunner

from riffpad import __version__
from riffpad.cli import main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_does_not_import_torch():
    # The pad tools must start fast: the CLI entry point may not import torch.
    code = (
        "import sys; from click.testing import CliRunner; from riffpad.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- one meaning per word: --device is the pad, --torch-device the compute device ----------


def _fails(args, *needles):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_device_is_the_pad_in_every_command_and_torch_device_the_compute_device():
    # render and convert read no pad: --device there says which option is meant.
    _fails(["render", "--device", "cuda", "--prompt-a", "x"], "--torch-device cuda")
    _fails(["convert", "--device", "cpu", "x.wav"], "--torch-device cpu")
    _fails(["serve", "--device", "cuda"], "--torch-device cuda")
    # A compute device given to a pad option, and a pad given to --torch-device.
    for cmd in (["monitor"], ["record", "out.jsonl"], ["calibrate"], []):
        _fails([*cmd, "--device", "cuda:1"], "compute device", "--torch-device cuda:1")
    _fails(["render", "--torch-device", "/dev/hidraw3", "-a", "x"], "is a pad", "--device")
    _fails(["--torch-device", "/dev/hidraw3"], "is a pad")
    # A value that fits neither word.
    _fails(["--torch-device", "banana"], "'banana' is not a compute device")
    _fails(["monitor", "--device", "banana"], "'banana' is not a hidraw node")
    for cmd in (["render"], ["convert"], ["serve"], []):
        out = CliRunner().invoke(main, [*cmd, "--help"]).output
        assert "--torch-device" in out


def test_config_file_device_words_are_checked_too(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('torch_device = "/dev/hidraw0"\n')
    result = CliRunner().invoke(main, ["--config", str(conf)])
    assert result.exit_code == 1 and "torch_device: '/dev/hidraw0' is a pad" in result.output


def test_every_option_of_render_and_udev_says_what_it_does():
    render = CliRunner().invoke(main, ["render", "--help"]).output
    assert "Blend of prompt A (0) into prompt B (1)" in render
    assert "Classifier-free guidance" in render
    uninstall = CliRunner().invoke(main, ["udev", "uninstall", "--help"]).output
    assert "Install under" not in uninstall and "Remove the rules under" in uninstall
    install = CliRunner().invoke(main, ["udev", "install", "--help"]).output
    assert "Install under this directory" in install
