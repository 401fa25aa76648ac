"""``heros.tools`` and ``heros.render`` helpers that tools rely on, on HEROs served in this process."""

from __future__ import annotations

from typing import Annotated

from heros import LocalHERO, RemoteHERO, event, tools
from heros.capabilities import AttributeCapability
from heros.meta import PublishedBy, Unit
from heros.render import doc_text


class Sensor(LocalHERO):
    """Values published by events: one by convention, one named explicitly, one not at all."""

    temperature: Annotated[float, Unit("K")] = 4.0
    pressure: Annotated[float, Unit("mbar"), PublishedBy("vacuum")] = 1e-6
    humidity: float = 0.4
    level: Annotated[float, PublishedBy("nothing_of_that_name")] = 0.0

    @event
    def temperature_changed(self, value: float) -> float:
        return value

    @event
    def vacuum(self, value: float) -> float:
        return value


def test_value_event_pairs_an_attribute_with_the_event_that_publishes_it(realm: str) -> None:
    with Sensor("sensor", realm=realm), RemoteHERO("sensor", realm=realm) as proxy:
        assert tools.value_event(proxy, "temperature") == "temperature_changed"  # <name>_changed
        assert tools.value_event(proxy, "pressure") == "vacuum"  # PublishedBy
        assert tools.value_event(proxy, "humidity") is None  # nothing publishes it: poll
        assert tools.value_event(proxy, "level") is None  # a named event the HERO does not have
        assert tools.value_event(proxy, "temperature_changed") is None  # not an attribute


def test_published_by_is_an_extra_field_and_parsed_from_upstream_type_text() -> None:
    cap = AttributeCapability.from_dict({"name": "p", "flavor": "attribute", "type": "Annotated[float, PublishedBy('vacuum')]"})
    assert cap.type == "float" and cap.extra == {"event": "vacuum"}


def test_doc_text_drops_inline_code_markup_for_tooltips() -> None:
    assert doc_text("Move to ``x`` mm at `speed`; returns it") == "Move to x mm at speed; returns it"
