"""Key expressions and name validation."""

from __future__ import annotations

import pytest

from heros import keys


@pytest.mark.parametrize("bad", ["", "a/b", "a*", "x$y", "q?", "h#", "@verbatim", " padded", "tab\t"])
def test_bad_names_are_refused_with_the_reason(bad):
    with pytest.raises(ValueError, match="HERO name"):
        keys.validate_name(bad)


@pytest.mark.parametrize("bad", [None, 3, b"x"])
def test_names_must_be_strings(bad):
    with pytest.raises(TypeError, match="must be a str"):
        keys.validate_name(bad)


@pytest.mark.parametrize("good", ["my_hero", "Laser-1", "äöü", "a.b", "x y"])
def test_good_names_pass(good):
    assert keys.validate_name(good) == good


def test_key_layout_is_upstreams():
    assert keys.member_key("lab", "stage", "move_to") == "@object/lab/stage/move_to"
    assert keys.health_key("lab") == "@object/lab/*/_health"
    assert keys.discover_selector("lab", "cam") == "@object/lab/cam/_discover/**"
    assert keys.attr_change_key("lab", "cam", "exposure") == "@object/lab/cam/_attr/exposure"


@pytest.mark.parametrize(
    "key, member",
    [("@object/r/n/m", "m"), ("@object/r/n/m/**", "m"), ("@object/r/*/_discover/**", "_discover"),
     ("@object/r/n/m/extra", None), ("@object/r/n/*", None), ("@object/r/n/**", None), ("@object/r/n", None)],
)
def test_parse_member(key, member):
    assert keys.parse_member(key, "@object/r/n") == member


def test_name_from_key():
    assert keys.name_from_key("@object/lab/cam/_health", "lab") == "cam"
    assert keys.name_from_key("@object/other/cam/_health", "lab") is None
