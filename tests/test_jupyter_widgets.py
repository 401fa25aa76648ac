"""The type -> widget registry and ladder, without a kernel."""

from __future__ import annotations

import datetime
from typing import Any

import ipywidgets as w
import numpy as np
import pytest

import heros_jupyter.widgets as hw
from heros_jupyter.widgets import Control, Spec, WidgetRegistry, control_for, format_value

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.usefixtures("close_widgets")


def check_widget(spec: Spec, cls: type, editable: bool = True, **traits: Any) -> Control:
    control = control_for(spec)
    assert type(control.widget) is cls, f"{spec} gave {type(control.widget).__name__}, expected {cls.__name__}"
    assert control.editable is editable
    for name, value in traits.items():
        assert getattr(control.widget, name) == value, f"{name}: {getattr(control.widget, name)!r} != {value!r}"
    return control


def test_bool_is_a_checkbox() -> None:
    check_widget(Spec("on", "bool", value=True), w.Checkbox, value=True)


def test_int_without_bounds_is_int_text_never_an_invented_slider() -> None:
    check_widget(Spec("n", "int", value=7), w.IntText, value=7)


def test_float_without_bounds_is_float_text() -> None:
    check_widget(Spec("x", "float", value=2.5), w.FloatText, value=2.5)


def test_both_bounds_make_a_slider_that_writes_on_release_with_an_unbounded_entry_beside_it() -> None:
    c = check_widget(Spec("p", "float", {"min": 0, "max": 50, "unit": "mW"}, value=3.0), w.FloatSlider,
                     min=0.0, max=50.0, value=3.0, continuous_update=False, readout=False)
    assert c.widget.step == 0.01
    assert type(c.entry) is w.FloatText and c.entry.value == 3.0  # the slider's readout would clamp what is typed
    c = check_widget(Spec("n", "int", {"min": 1, "max": 10, "step": 3}, value=4), w.IntSlider, min=1, max=10, step=3,
                     value=4, continuous_update=False, readout=False)
    assert type(c.entry) is w.IntText


def test_one_bound_is_a_plain_number_box_checked_on_commit() -> None:
    # changed with issue 14: Bounded*Text clamped a typed value silently; the bound is now checked instead
    c = check_widget(Spec("t", "float", {"min": 0.0}, value=1.0), w.FloatText, value=1.0)
    with pytest.raises(ValueError, match=r"t must be within 0\.\., not -5"):
        c.validate(-5)
    c = check_widget(Spec("n", "int", {"max": 5}, value=-3), w.IntText, value=-3)
    assert c.validate(5) == 5


def test_a_typed_value_out_of_range_is_refused_not_clamped_and_the_inputs_go_back() -> None:
    c = control_for(Spec("power", "float", {"min": 0, "max": 50, "unit": "mW"}, value=12.5))
    c.show(12.5)
    committed: list[float] = []
    refused: list[str] = []
    c.watch(committed.append, refused.append)
    c.entry.value = 80.0  # what the browser sends when the user types 80 and presses Enter
    assert committed == [] and refused == ["power must be within 0..50 mW, not 80.0"]
    assert c.entry.value == 12.5 and c.widget.value == 12.5  # back to the HERO's value
    c.entry.value = -5.0
    assert committed == [] and "0..50 mW, not -5.0" in refused[-1] and c.entry.value == 12.5
    c.entry.value = 20.0
    assert committed == [20.0] and c.widget.value == 20.0  # the slider follows the entry
    c.widget.value = 30.0  # a drag: the entry follows the slider
    assert committed == [20.0, 30.0] and c.entry.value == 30.0
    c.show(4.0)  # a value from the HERO is no commit
    assert committed == [20.0, 30.0] and c.entry.value == 4.0


def test_choices_and_types_are_checked_too() -> None:
    c = control_for(Spec("wl", "int", {"choices": [532, 633]}, value=1064))
    with pytest.raises(ValueError, match="wl must be one of 532, 633, not 1064"):
        c.validate(1064)  # the HERO holds a value outside its choices: shown, but not written back
    c = control_for(Spec("items", "list", value=[1]))
    with pytest.raises(ValueError, match="items must be a list, not int"):
        c.validate(3)


def test_str_is_a_text_committed_on_enter() -> None:
    check_widget(Spec("s", "str", value="hi"), w.Text, value="hi", continuous_update=False)


def test_choices_enum_and_literal_are_dropdowns() -> None:
    c = check_widget(Spec("wl", "int", {"choices": [532, 633, 780]}, value=633), w.Dropdown, value=633)
    assert [v for _, v in c.widget.options] == [532, 633, 780]
    check_widget(Spec("mode", "Mode", {"choices": ["fast", "slow"]}, value="slow"), w.Dropdown, value="slow")
    check_widget(Spec("flavour", "Literal", {"choices": ["up", "down"]}, value="up"), w.Dropdown, value="up")


def test_a_value_outside_the_choices_is_still_shown() -> None:
    c = check_widget(Spec("wl", "int", {"choices": [532, 633]}, value=1064), w.Dropdown, value=1064)
    assert 1064 in [v for _, v in c.widget.options]


def test_read_only_is_a_value_label() -> None:
    c = check_widget(Spec("temperature", "float", {"unit": "K"}, writable=False, value=4.2), w.HTML, editable=False)
    c.show(4.25)
    assert c.widget.value == "<code>4.25</code>"  # the panel row shows the unit beside it


def test_read_only_never_gets_a_write_control_even_with_bounds() -> None:
    check_widget(Spec("pos", "float", {"min": 0, "max": 10}, writable=False), w.HTML, editable=False)


def test_ndarray_is_a_summary() -> None:
    c = check_widget(Spec("img", "ndarray", writable=False), w.HTML, editable=False)
    c.show(np.arange(12.0).reshape(3, 4))
    assert "(3, 4)" in c.widget.value and "float64" in c.widget.value and "max 11" in c.widget.value


def test_list_and_dict_are_literal_texts() -> None:
    c = check_widget(Spec("items", "list", value=[1, 2]), w.Text, value="[1, 2]")
    c.widget.value = "[3, 4, 5]"
    assert c.read() == [3, 4, 5]
    c.widget.value = "[3, oops"
    with pytest.raises(ValueError, match=r"items: .* is not a Python literal"):
        c.read()


def test_datetime_is_a_picker() -> None:
    check_widget(Spec("when", "datetime", value=datetime.datetime(2026, 1, 2, 3, 4)), w.NaiveDatetimePicker)


def test_unknown_attribute_type_is_a_read_only_repr() -> None:
    c = check_widget(Spec("thing", "Opaque", value=None), w.HTML, editable=False)
    c.show({"a": 1})
    assert "{&#x27;a&#x27;: 1}" in c.widget.value


def test_unknown_parameter_type_reads_a_literal_or_text() -> None:
    c = check_widget(Spec("value", "Any", role="parameter"), w.Text)
    c.widget.value = "(1, 2)"
    assert c.read() == (1, 2)
    c.widget.value = "hello world"
    assert c.read() == "hello world"


def test_optional_types_use_their_base_type() -> None:
    check_widget(Spec("x", "float | None", value=1.0), w.FloatText)
    check_widget(Spec("x", "Optional[int]", value=1), w.IntText)


def test_registered_factory_wins_and_the_context_manager_restores() -> None:
    made = []

    def factory(spec: Spec) -> w.Widget:
        made.append(spec.name)
        return w.FloatLogSlider(value=spec.value or 1.0)

    spec = Spec("exposure", "Exposure", value=0.1)
    with hw.registered("Exposure", factory):
        control = control_for(spec)
        assert isinstance(control.widget, w.FloatLogSlider) and made == ["exposure"]
    assert not isinstance(control_for(spec).widget, w.FloatLogSlider)


def test_register_by_type_and_as_decorator_on_a_private_registry() -> None:
    reg = WidgetRegistry()

    class Wavelength(float):
        pass

    @reg.register(Wavelength)
    def wl(spec: Spec) -> Control:
        return Control(w.FloatText(value=spec.value), to_widget=lambda v: v * 1e9, from_widget=lambda v: v / 1e9)

    control = reg.control_for(Spec("wl", "Wavelength", value=633.0))
    control.show(633e-9)
    assert control.widget.value == pytest.approx(633.0)
    assert reg.unregister("Wavelength") is True
    assert isinstance(reg.control_for(Spec("wl", "Wavelength")).widget, w.HTML)
    assert control_for(Spec("wl", "Wavelength")).editable is False  # the global registry never saw it


def test_a_factory_returning_none_falls_through_to_the_ladder() -> None:
    reg = WidgetRegistry()
    reg.register("float", lambda spec: None)
    assert isinstance(reg.control_for(Spec("x", "float")).widget, w.FloatText)


def test_bad_registrations_say_what_is_wrong() -> None:
    reg = WidgetRegistry()
    with pytest.raises(TypeError, match="must be callable"):
        reg.register("float", 3)
    with pytest.raises(TypeError, match="for a type or a type name"):
        reg.register(3.0, lambda s: None)
    with pytest.raises(ValueError, match="cannot be empty"):
        reg.register("  ", lambda s: None)


def test_format_value_is_the_one_rule_of_heros_render() -> None:
    from heros.render import value_text

    assert format_value(4.123456789, "K") == "4.12346 K" == value_text(4.123456789, "K")
    assert format_value(np.float32(0.1), "s") == "0.1 s"
    assert format_value(3, "mA") == "3 mA"
    assert format_value(True) == "True"
    assert format_value(list(range(100))).endswith("(list of 100)")


def test_method_signatures_read_as_declared() -> None:
    from heros.capabilities import MethodCapability
    from heros_jupyter.panel import doc_html, signature_text

    def zoo(a, /, b: int, *args: float, c: str = "x", d: Any = None, **kwargs: Any) -> dict:
        return {}

    def kw(x: float, *, scale: float = 1.0) -> None:
        return None

    assert signature_text(MethodCapability.from_method(zoo)) == "zoo(a, /, b: int, *args: float, c: str = 'x', d: Any = None, **kwargs: Any) -> dict"
    assert signature_text(MethodCapability.from_method(kw)) == "kw(x: float, *, scale: float = 1.0)"
    assert doc_html("Go to ``target`` K & stop") == "Go to <code>target</code> K &amp; stop"
