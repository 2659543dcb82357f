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
