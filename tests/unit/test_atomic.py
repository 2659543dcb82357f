import os
import stat

import pytest

from riffpad.atomic import atomic_open, write_text


def test_file_gets_the_permissions_a_plain_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.json", "{}")
        with open(tmp_path / "plain.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.json").st_mode) == 0o644


def test_explicit_permissions(tmp_path):
    write_text(tmp_path / "r.rules", "x", perms=0o640)
    assert stat.S_IMODE(os.stat(tmp_path / "r.rules").st_mode) == 0o640


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "take.wav"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half a fi")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]


def test_new_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "take.png"
    with atomic_open(target) as fh:
        fh.write(b"\x89PNG")
        assert not target.exists()  # still aside, under a dot name
        assert all(p.name.startswith(".take.png.") for p in tmp_path.iterdir())
    assert target.read_bytes() == b"\x89PNG"
