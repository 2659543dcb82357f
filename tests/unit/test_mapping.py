"""Mapping files: the shipped ones, and errors that name the file, the line and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riffpad.controls import MappingError, load_mapping
from riffpad.controls._toml import find_line
from riffpad.controls.mapping import ALL_CONTROLS, EVENTS, PARAMS, shipped_mappings

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> MappingError:
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    err = info.value
    assert err.path == path
    assert str(err).startswith(f"{path}:{err.line}: ")
    return err


def test_default_mapping_binds_the_documented_table():
    m = load_mapping()
    assert m.name == "dualsense" and m.resolution == "full"
    assert m.source == MAPPINGS_DIR / "dualsense.toml"
    bound = {p: (b.control, b.invert, b.mode) for p, b in m.params.items()}
    assert bound == {
        "alpha": ("right_stick_x", False, "absolute"),
        "nudge": ("right_stick_y", True, "absolute"),
        "cfg": ("left_stick_y", True, "absolute"),
        "steps": ("l2", False, "absolute"),
        "base_seed": ("touchpad_x", False, "absolute"),
    }
    events = {e.control: e.event for e in m.events}
    assert events["r2"] == "fire" and events["cross"] == "promote"
    ps = next(e for e in m.events if e.control == "ps")
    assert (ps.event, ps.hold) == ("quit", 1.0)
    r2 = next(e for e in m.events if e.control == "r2")
    assert (r2.press, r2.release) == (0.6, 0.4)


def test_every_shipped_mapping_loads_and_relative_is_relative():
    names = shipped_mappings()
    assert {"dualsense", "relative"} <= set(names)
    for name in names:
        load_mapping(MAPPINGS_DIR / f"{name}.toml")
    rel = load_mapping("relative")  # a bare name finds the shipped file
    assert rel.params["alpha"].mode == "relative"
    assert rel.params["alpha"].rate == 0.5


def test_toml_syntax_error_names_file_and_line(tmp_path):
    err = error_of(
        tmp_path, '[controls.cross]\nevent = "promote"\n\n[controls.r2\nevent = "fire"\n'
    )
    assert err.line == 4
    assert "invalid TOML" in err.message


def test_unknown_control_lists_the_valid_ones(tmp_path):
    err = error_of(
        tmp_path,
        '# comment\n[controls.cross]\nevent = "promote"\n\n'
        '[controls.right_trigger]\nevent = "fire"\n',
    )
    assert err.line == 5
    assert "unknown control 'right_trigger'" in err.message
    for control in ("r2", "right_stick_x", "dpad_up", "touchpad_x", "cross"):
        assert control in err.message
    assert set(ALL_CONTROLS) <= set(re.findall(r"[a-z0-9_]+", err.message))


def test_unknown_parameter_lists_the_valid_ones(tmp_path):
    err = error_of(tmp_path, '[controls.right_stick_x]\ninvert = false\nparam = "blend"\n')
    assert err.line == 3
    assert 'unknown parameter "blend"' in err.message
    assert all(p in err.message for p in PARAMS)


def test_unknown_event_lists_the_valid_ones(tmp_path):
    err = error_of(tmp_path, 'name = "x"\n[controls]\ncross = { event = "explode" }\n')
    assert err.line == 3
    assert all(e in err.message for e in EVENTS)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[controls.cross]\nparam = "alpha"\n', 2, "is a button and cannot set a parameter"),
        ('[controls.left_stick_x]\nevent = "fire"\n', 2, "cannot send events"),
        ('[controls.l2]\nparam = "steps"\nmode = "relative"\n', 3, "sticks only"),
        ('[controls.l2]\nparam = "steps"\nevent = "fire"\n', 1, "exactly one of"),
        ('[controls.l2]\ncurve = "linear"\n', 1, "exactly one of"),
        ('[controls.l2]\nparam = "steps"\ncurve = "cubic"\n', 3, "linear, expo"),
        ('[controls.l2]\nparam = "steps"\namount = 2\n', 3, "0.0 .. 1.0"),
        ('[controls.l2]\nparam = "steps"\ninvert = "yes"\n', 3, "true or false"),
        ('[controls.l2]\nparam = "steps"\nspeed = 1\n', 3, "unknown key 'speed'"),
        ('[controls.r2]\nevent = "fire"\npress = 0.3\n', 1, "below press"),
        ('[controls.cross]\nevent = "fire"\npress = 0.7\n', 3, "triggers (l2, r2) only"),
        ('[controls.touchpad_x]\nparam = "base_seed"\ndeadzone = 0.1\n', 3, "touchpad has none"),
        ('[controls.touchpad_x]\nparam = "base_seed"\ninitial = 5000\n', 3, "0 .. 1024"),
        (
            '[controls.l2]\nparam = "steps"\n\n[controls.r2]\nparam = "steps"\n',
            5,
            "already driven by 'l2'",
        ),
        (
            'resolution = "midi"\n[controls.left_stick_x]\nparam = "alpha"\nmode = "relative"\n',
            4,
            "full",
        ),
        ('resolution = "hifi"\n', 1, "full, midi"),
        ('format = "something"\n', 1, "riffpad-mapping"),
        ("version = 2\n", 1, "version = 1"),
        ("controls = 3\n", 1, "[controls]"),
        ("[controls]\ncross = 3\n", 2, "expected a table"),
        ("[extra]\n", 1, "unknown key 'extra'"),
    ],
)
def test_semantic_errors_name_file_line_and_expectation(tmp_path, text, line, fragment):
    err = error_of(tmp_path, text)
    assert err.line == line, err
    assert fragment in err.message, err


def test_a_broken_last_line_rejects_the_whole_file(tmp_path):
    good = (MAPPINGS_DIR / "dualsense.toml").read_text()
    err = error_of(tmp_path, good + '\n[controls.r3]\nevent = "fire"\nhold = -1\n')
    assert err.line == good.count("\n") + 4
    assert "hold" in err.message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MappingError, match="no such file"):
        load_mapping(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MappingError, match="not UTF-8"):
        load_mapping(bad)


def test_find_line_handles_headers_dotted_keys_and_inline_tables():
    text = (
        "a = 1\n"
        "[controls.cross]\n"
        'event = "promote"\n'
        '[ controls . "r2" ]  # spaced, quoted\n'
        'event = "fire"\n'
        "press = 0.6\n"
        "[x]\n"
        'controls.l2.param = "steps"\n'
        'y = { param = "alpha" }\n'
    )
    assert find_line(text, ("a",)) == 1
    assert find_line(text, ("controls", "cross", "event")) == 3
    assert find_line(text, ("controls", "r2", "press")) == 6
    assert find_line(text, ("controls", "r2", "missing")) == 4  # falls back to the header
    assert find_line(text, ("x", "controls", "l2", "param")) == 8
    assert find_line(text, ("x", "y", "param")) == 9
    assert find_line(text, ("nothing",)) is None


def test_readme_controls_table_names_every_default_event():
    readme = (MAPPINGS_DIR.parent / "README.md").read_text()
    # The "## Controls" section, up to the next heading or bold sub-heading of the README.
    section = re.split(r"\n#|\n\*\*", readme.split("\n## Controls\n")[1])[0]
    table_events = set(re.findall(r"\| `([a-z_]+)`(?: / `([a-z_]+)`)? \|", section))
    documented = {e for pair in table_events for e in pair if e}
    assert documented == {b.event for b in load_mapping().events}


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("nan", "nan"),
        ("inf", "inf"),
        ("-inf", "-inf"),
        ("1" + "0" * 40, "an integer of 41 digits"),
        ('"0.5"', '"0.5"'),
        ("true", "true"),
        ("[0.5]", "[0.5]"),
    ],
)
@pytest.mark.parametrize(
    ("binding", "key", "allowed"),
    [
        ('param = "alpha", curve = "expo"', "amount", "0.0 .. 1.0"),
        ('param = "alpha"', "deadzone", "0.0 .. 0.9"),
        ('param = "alpha", mode = "relative"', "rate", "0.01 .. 100.0"),
        ('param = "cfg"', "initial", "3.0 .. 15.0"),
        ('event = "fire"', "hold", "0.0 .. 60.0"),
    ],
)
def test_every_number_is_finite_and_in_range(tmp_path, value, got, binding, key, allowed):
    control = "right_stick_x" if "param" in binding else "cross"
    err = error_of(tmp_path, f"[controls]\n\n{control} = {{ {binding}, {key} = {value} }}\n")
    assert err.line == 3
    assert err.message == f"{key}: expected a number {allowed}, got {got}"


@pytest.mark.parametrize("key", ["press", "release"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_trigger_thresholds_are_finite(tmp_path, key, value):
    err = error_of(tmp_path, f'[controls.r2]\nevent = "fire"\n{key} = {value}\n')
    assert err.line == 3 and err.message == f"{key}: expected a number 0.05 .. 1.0, got {value}"
