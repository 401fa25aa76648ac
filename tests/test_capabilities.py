"""The capability scan (SPEC 3.2) and capability <-> dict <-> signature, without any network."""

from __future__ import annotations

import enum
import inspect
from typing import Annotated, ClassVar, Literal, Optional

import numpy as np
import pytest

from heros.capabilities import (
    _PASSING,
    _TYPE_CHECKS,
    AttributeCapability,
    Capability,
    EventCapability,
    MethodCapability,
    Parameter,
    arguments_check,
    scan,
    value_check,
)
from heros.event import event
from heros.inspect import force_remote, local_only
from heros.meta import Choices, Doc, Range, Unit


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Base:
    inherited: int = 1
    only_in_base: str


class Sample(Base):
    plain = 3
    annotated: float = 2.5
    only_annotated: int
    color: Color = Color.RED
    union: int | None = None
    optional: Optional[str] = None  # noqa: UP045 - upstream's type text for Optional is tested
    items: list[int] = []
    klass: ClassVar[int] = 5
    limited: Annotated[float, Range(0, 10, 0.5), Unit("V"), Doc("bias voltage")] = 1.0
    wavelength: Annotated[int, Choices(532, 633)] = 532
    literal: Literal["a", "b"] = "a"
    as_dict: Annotated[int, {"min": 1, "max": 3, "unit": "mA"}] = 1
    stringly: "Annotated[float, Unit('K')]" = 4.0  # noqa: UP037 - string annotations are tested

    def __init__(self):
        self.instance_only = 1
        self.getter_calls = 0

    @property
    def ro(self) -> float:
        """Read-only value."""
        return 1.0

    @property
    def rw(self):
        self.getter_calls += 1
        return 5

    @rw.setter
    def rw(self, value):
        pass

    @property
    def broken(self) -> int:
        raise RuntimeError("hardware unplugged")

    def method(self, a: int, /, b: Annotated[float, Unit("s")] = 1.0, *args, c: str = "x", **kwargs) -> float:
        """Do things."""
        return 0.0

    def measure(self) -> Annotated[float, Unit("mm"), Doc("where it ended")]:
        return 1.0

    def opaque_default(self, handle=object()):
        pass

    async def coro(self, x: int) -> int:
        return x

    @staticmethod
    def static(x):
        return x

    @classmethod
    def klassmethod(cls):
        return cls

    @event
    def happened(self, v: int) -> int:
        return v

    @local_only
    def hidden(self):
        pass

    def _private(self):
        pass

    @force_remote
    def _forced(self):
        pass


@pytest.fixture(scope="module")
def caps():
    obj = Sample()
    found = {c.name: c for c in scan(obj, frozenset({"getter_calls"}))}
    return obj, found


def test_what_is_exposed(caps):
    _, found = caps
    expected = {"plain", "annotated", "only_annotated", "inherited", "only_in_base", "color", "union", "optional",
                "items", "klass", "limited", "wavelength", "literal", "as_dict", "stringly", "ro", "rw", "broken",
                "method", "measure", "opaque_default", "coro", "static", "klassmethod", "happened", "_forced"}
    assert set(found) == expected
    assert "instance_only" not in found and "hidden" not in found and "_private" not in found


def test_flavours_and_types_follow_upstream(caps):
    _, found = caps
    types = {n: c.type for n, c in found.items() if isinstance(c, AttributeCapability)}
    assert types["plain"] == "int" and types["annotated"] == "float" and types["only_annotated"] == "int"
    assert types["union"] == "int | None" and types["optional"] == "Optional" and types["items"] == "list"
    assert types["klass"] == "int" and types["color"] == "Color" and types["literal"] == "Literal"
    assert isinstance(found["happened"], EventCapability)
    assert isinstance(found["method"], MethodCapability) and isinstance(found["static"], MethodCapability)


def test_properties_are_attributes_without_running_getters_twice_and_a_raising_getter_is_harmless(caps):
    obj, found = caps
    assert found["ro"].access == "r" and found["ro"].type == "float" and found["ro"].doc == "Read-only value."
    assert found["rw"].access == "rw" and found["rw"].type == "int"
    assert obj.getter_calls <= 1
    assert found["broken"].type == "int"  # from its annotation: the getter never ran


def test_annotated_metadata_becomes_extra_fields(caps):
    _, found = caps
    assert found["limited"].extra == {"min": 0, "max": 10, "step": 0.5, "unit": "V", "doc": "bias voltage"}
    assert found["wavelength"].extra["choices"] == [532, 633]
    assert found["color"].extra["choices"] == ["red", "blue"] and found["color"].enum_cls is Color
    assert found["literal"].extra["choices"] == ["a", "b"]
    assert found["as_dict"].extra == {"min": 1, "max": 3, "unit": "mA"}
    assert found["stringly"].type == "float" and found["stringly"].extra == {"unit": "K"}


def test_method_capability_and_signature_roundtrip(caps):
    _, found = caps
    m = found["method"]
    d = m.to_dict()
    assert d["doc"] == "Do things." and d["return_type"] == "float"
    assert [p["kind"] for p in d["parameters"]] == [0, 1, 2, 3, 4]
    assert d["parameters"][1]["unit"] == "s"
    again = Capability.from_dict(d)
    assert str(again.to_signature()) == "(a: 'int', /, b: 'float' = 1.0, *args, c: 'str' = 'x', **kwargs) -> 'float'"
    assert found["coro"].extra.get("async") is True


def test_a_return_unit_is_an_extra_key_upstream_peers_ignore(caps):
    _, found = caps
    m = found["measure"]
    assert m.return_type == "float" and m.extra["return_unit"] == "mm"
    d = m.to_dict()
    assert d["return_type"] == "float" and d["return_unit"] == "mm"  # the upstream fields unchanged, one key more
    again = Capability.from_dict(d)
    assert again.extra["return_unit"] == "mm" and str(again.to_signature()) == "() -> 'float'"
    assert "return_unit" not in found["method"].extra


def test_a_default_that_cannot_travel_shows_its_repr(caps):
    _, found = caps
    sig = Capability.from_dict(found["opaque_default"].to_dict()).to_signature()
    assert repr(sig.parameters["handle"].default).startswith("<object object at")


def test_a_real_default_of_undefined_is_not_lost():
    def f(x="undefined", y=None):
        pass

    cap = MethodCapability.from_method(f)
    sig = Capability.from_dict(cap.to_dict()).to_signature()
    assert sig.parameters["x"].default == "undefined"
    # an upstream peer sends no has_default key: "undefined" then means no default
    legacy = cap.to_dict()
    for p in legacy["parameters"]:
        del p["has_default"]
    assert Capability.from_dict(legacy).to_signature().parameters["x"].default is inspect.Parameter.empty


def test_from_dict_rejects_malformed_descriptions():
    with pytest.raises(ValueError):
        Capability.from_dict({"flavor": "method"})
    with pytest.raises(ValueError):
        Capability.from_dict({"name": "m", "flavor": "method", "parameters": "nope"})
    assert Capability.from_dict({"name": "x", "flavor": "teleport"}) is None
    with pytest.raises(ValueError):
        Parameter.from_dict({"type": "int"})


def test_protocol_01_parameter_kinds():
    p = Parameter.from_dict({"name": "x", "default": 1}, proto_version=0.1)
    assert p.kind == inspect.Parameter.KEYWORD_ONLY
    cap = MethodCapability("m", parameters=[Parameter("a"), Parameter("b")])
    assert cap.call_dict(1, b=2, junk=3) == {"a": 1, "b": 2}


def test_upstream_dict_shape(caps):
    _, found = caps
    assert found["annotated"].to_dict() == {"name": "annotated", "flavor": "attribute", "type": "float", "access": "rw"}
    assert found["happened"].to_dict()["flavor"] == "event"


def test_a_member_whose_signature_cannot_be_read_is_skipped():
    class Odd:
        builtin = len  # builtins have signatures; dict.get on a class attribute does not

        odd = dict.fromkeys

    found = {c.name for c in scan(Odd(), frozenset())}
    assert "builtin" in found



@pytest.mark.parametrize("type_text, accepted, refused", [
    ("int", [5, -1, 2**70, np.int64(5), np.uint8(3)], [True, np.bool_(True), 1.0, "1", None]),
    ("float", [1.5, 1, np.float32(0.5), np.int16(2)], [False, np.bool_(False), "1.5", 1j, None]),
])
def test_type_checks_take_numbers_of_every_kind_and_refuse_bools(type_text, accepted, refused):
    check = value_check(type_text, {}, "argument 'x' of f()")
    for value in accepted:
        check(value)
    for value in refused:
        with pytest.raises(TypeError, match="argument 'x' of f"):
            check(value)


def test_the_types_a_check_lets_through_without_a_call_are_ones_its_test_accepts():
    """``_PASSING`` (one set lookup per argument of a call) must never let through a value that the
    full test would refuse: a sample of every type it names passes that test."""
    samples = {int: 3, float: 2.5, complex: 1j, bool: True, str: "s", bytes: b"b", bytearray: bytearray(b"b"),
               list: [1], tuple: (1,), dict: {"a": 1}, set: {1}, frozenset: frozenset({1}), type(None): None}
    assert set(_PASSING) == set(_TYPE_CHECKS)
    for text, passing in _PASSING.items():
        test = _TYPE_CHECKS[text][1]
        for typ in passing:
            assert test(samples[typ]), (text, typ)
    # with a range or choices nothing is let through by type alone
    ranged = value_check("float", {"min": 0, "max": 1}, "attribute 'x'")
    with pytest.raises(ValueError, match="within 0..1"):
        ranged(2.5)
    chosen = value_check("int", {"choices": [1, 2]}, "attribute 'x'")
    with pytest.raises(ValueError, match="one of 1, 2"):
        chosen(3)


def test_a_call_with_arguments_of_the_declared_types_passes_and_others_are_refused_by_name():
    def volts(v: float, ch: int, name: str = "x", on: bool = True) -> None:
        pass

    check = arguments_check(MethodCapability.from_method(volts), "volts()")
    check([1.5, 2, "a", False], {})
    check([1, np.int64(2)], {"on": np.bool_(True)})
    for args, kwargs, wrong in (([1.5, True], {}, "'ch'"), (["1.5", 2], {}, "'v'"), ([1.5, 2], {"name": 3}, "'name'"),
                                ([1.5, 2, "a", 1], {}, "'on'")):
        with pytest.raises(TypeError, match=wrong):
            check(args, kwargs)
