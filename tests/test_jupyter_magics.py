"""``%heros`` in an IPython shell without a kernel: parsing, errors, completion, settings, registry, unloading."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from jupyter_helpers import ipython_shell, wait_until
from traitlets import TraitError

from heros import RemoteHERO
from heros_jupyter.magics import HerosMagics

pytest_plugins = ["jupyter_fixtures"]
pytestmark = pytest.mark.usefixtures("close_widgets")


@pytest.fixture
def ip(realm: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A shell with the extension loaded; HerosMagics.realm defaults to this test's realm."""
    shell = ipython_shell()
    monkeypatch.setenv("HEROS_REALM", realm)
    shell.run_line_magic("load_ext", "heros_jupyter")
    yield shell
    shell.run_line_magic("unload_ext", "heros_jupyter")
    for name in ("dev", "other", "d", "laser"):
        shell.user_ns.pop(name, None)
    shell.config.pop("HerosMagics", None)  # what %config wrote


def magics(shell: Any) -> HerosMagics:
    return shell._heros_magics


def complete(shell: Any, line: str) -> list[str]:
    """What a Jupyter frontend offers for Tab at the end of ``line`` (the kernel's completion API).

    Jedi adds Python names as it does for every magic (``%run`` too); ours are the completions that
    replace the whole word under the cursor. After a space, ask the completer hook itself.
    """
    word = re.split(r"\s", line)[-1]
    if not word:
        return shell._heros_magics.complete(SimpleNamespace(text_until_cursor=line, line=line, symbol=""))
    with provisionalcompleter():
        found = shell.Completer.completions(line, len(line))
        return [c.text for c in found if c.start == len(line) - len(word) and c.text.startswith(word)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "%heros needs a subcommand: discover, list, connect, panel, plot, disconnect"),
        ("conect dev", "unknown subcommand 'conect'; did you mean 'connect'?"),
        ("frobnicate", "unknown subcommand 'frobnicate'; use one of discover"),
        ("connect", "%heros connect needs a HERO name, e.g. %heros connect cryostat."),
        ("panel", "%heros panel needs a HERO name"),
        ("list dev", "%heros list takes no HERO name (got 'dev')"),
        ("connect dev --tag x", "%heros connect does not take --tag."),
        ("discover --as x", "%heros discover does not take --as."),
        ("disconnect", "%heros disconnect needs either a HERO name or --all."),
        ("disconnect dev --all", "%heros disconnect needs either a HERO name or --all."),
        ("disconnect nobody", "HERO 'nobody' is not connected in realm"),
        ("connect a/b", "HERO name 'a/b' contains /"),
        ("list --realm a*b", "HERO realm 'a*b' contains *"),
        ("connect dev extra words", "%heros: unrecognized arguments: extra words (see %heros?)"),
        ("list --realm", "%heros: argument --realm: expected one argument"),
    ],
)
def test_wrong_use_is_a_usage_error_with_one_sentence(ip: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("heros", line)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_connecting_to_a_missing_hero_suggests_the_close_name(ip: Any, spawn: Any, realm: str) -> None:
    spawn(realm, "Device:device")
    magics(ip).discovery_timeout = 0.5
    with pytest.raises(UsageError, match=r"'devise' not found in realm .*did you mean 'device'"):
        ip.run_line_magic("heros", "connect devise")


def test_help_documents_every_subcommand_and_option() -> None:
    doc = HerosMagics.heros.__doc__
    for word in ("discover", "list", "connect", "panel", "disconnect", "--realm", "--tag", "--as", "--all",
                 "cryo = %heros connect cryostat", "HerosMagics.<name>", "poll_interval"):
        assert word in doc, word


def test_pinfo_shows_the_help(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("pinfo", "%heros")
    out = capsys.readouterr().out
    assert "Discover, connect to and drive HEROs" in out and "--as VAR" in out


def test_settings_are_config_traits(ip: Any) -> None:
    m = magics(ip)
    ip.run_line_magic("config", "HerosMagics.update_rate = 4.0")
    ip.run_line_magic("config", "HerosMagics.call_timeout = 3.5")
    ip.run_line_magic("config", "HerosMagics.poll_interval = 0")
    ip.run_line_magic("config", "HerosMagics.realm = 'otherrealm'")
    assert (m.bridge.rate, m.context.call_timeout, m.context.poll_interval) == (4.0, 3.5, 0)
    assert "otherrealm" in m.registries
    with pytest.raises(TraitError, match="update_rate must be positive"):
        m.update_rate = 0
    with pytest.raises(TraitError, match="contains /"):
        m.realm = "a/b"


def test_ipython_config_applies_at_load(realm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shell = ipython_shell()
    monkeypatch.setenv("HEROS_REALM", realm)
    shell.config.HerosMagics.update_rate = 2.5
    shell.config.HerosMagics.discovery_timeout = 0.7
    try:
        shell.run_line_magic("load_ext", "heros_jupyter")
        m = magics(shell)
        assert (m.update_rate, m.bridge.rate, m.discovery_timeout, m.realm) == (2.5, 2.5, 0.7, realm)
    finally:
        shell.run_line_magic("unload_ext", "heros_jupyter")
        shell.config.pop("HerosMagics", None)


def test_list_and_discover_print_the_heros_alive(ip: Any, spawn: Any, realm: str, capsys: pytest.CaptureFixture[str]) -> None:
    spawn(realm, "Device:dev", "Recorder:rec")
    wait_until(lambda: magics(ip).registry(realm).names() == ["dev", "rec"], 10, "discovery")
    ip.run_line_magic("heros", "list")
    out = capsys.readouterr().out
    assert f"2 HEROs alive in realm {realm!r}" in out
    assert re.search(r"dev\s+Device", out) and re.search(r"rec\s+Recorder", out)
    assert ip.run_line_magic("heros", "discover") is None  # no kernel: plain text
    assert "dev" in capsys.readouterr().out
    ip.run_line_magic("heros", "list --tag nosuchtag")
    assert "No HERO with tag 'nosuchtag' is alive" in capsys.readouterr().out


def test_registry_follows_joins_and_leaves(ip: Any, spawn: Any, realm: str) -> None:
    reg = magics(ip).registry(realm)
    reg.wait_ready(5)
    late = spawn(realm, "Device:late")
    wait_until(lambda: "late" in reg.heroes, 10, "the join")
    assert reg.heroes["late"]["class"] == "Device" and reg.heroes["late"]["alive"]
    late.kill()
    wait_until(lambda: "late" not in reg.heroes, 10, "the leave")
    assert reg.joins >= 1 and reg.leaves == 1


def test_connect_returns_the_proxy_and_binds_it(ip: Any, spawn: Any, realm: str) -> None:
    spawn(realm, "Device:dev")
    proxy = ip.run_line_magic("heros", "connect dev")
    assert isinstance(proxy, RemoteHERO) and ip.user_ns["dev"] is proxy and proxy.add(1, 2) == 3
    other = ip.run_line_magic("heros", "connect dev --as d")
    assert ip.user_ns["d"] is other and other is not proxy
    panel = magics(ip).panels[(realm, "dev")]
    assert panel.proxy is other
    assert ip.run_line_magic("heros", "panel dev") is panel


def test_reconnecting_replaces_the_panel_and_releases_its_subscriptions(ip: Any, spawn: Any, realm: str) -> None:
    server = spawn(realm, "Device:dev")
    ip.run_line_magic("heros", "connect dev")
    old = magics(ip).panels[(realm, "dev")]
    old_binding = old.bindings["gain"]
    ip.run_line_magic("heros", "connect dev")
    new = magics(ip).panels[(realm, "dev")]
    assert new is not old and old.closed and old.widget.comm is None and old_binding._subscription is None
    server.send("eval setattr(heroes['dev'], 'gain', 3.25)")
    server.wait_line("OK")
    wait_until(lambda: new.bindings["gain"].control.widget.value == 3.25, 5, "the new panel to follow")
    assert old_binding.confirmed == 1.5


def test_disconnect_closes_and_unbinds(ip: Any, spawn: Any, realm: str) -> None:
    spawn(realm, "Device:dev", "Recorder:other")
    proxy = ip.run_line_magic("heros", "connect dev")
    ip.run_line_magic("heros", "connect other")
    ip.run_line_magic("heros", "disconnect dev")
    assert "dev" not in ip.user_ns and (realm, "dev") not in magics(ip).panels and proxy._hero_destroyed
    ip.run_line_magic("heros", "disconnect --all")
    assert magics(ip).panels == {} and "other" not in ip.user_ns


def test_tab_completes_subcommands_names_and_options(ip: Any, spawn: Any, realm: str) -> None:
    spawn(realm, "Device:dev", "Device:device2", "Recorder:rec")
    wait_until(lambda: len(magics(ip).registry(realm).names()) == 3, 10, "discovery")
    assert complete(ip, "%heros con") == ["connect"]
    assert complete(ip, "%heros d") == ["discover", "disconnect"]
    assert complete(ip, "%heros connect de") == ["dev", "device2"]
    assert complete(ip, "cryo = %heros connect r") == ["rec"]
    assert complete(ip, "%heros panel ") == ["dev", "device2", "rec"]
    assert complete(ip, "%heros connect dev --") == ["--as", "--realm"]
    assert complete(ip, "%heros list --") == ["--realm", "--tag"]
    ip.run_line_magic("heros", "connect rec")
    assert complete(ip, "%heros disconnect ") == ["rec", "--all"]


def test_tab_offers_hero_names_first_each_typed_with_its_class(ip: Any, spawn: Any, jspawn: Any, realm: str) -> None:
    spawn(realm, "Device:dev")
    jspawn(realm, "Laser:laser")
    wait_until(lambda: len(magics(ip).registry(realm).names()) == 2, 10, "discovery")
    for line in ("%heros connect ", "laser = %heros connect ", "%heros plot "):
        with provisionalcompleter():
            found = [(c.text, c.type) for c in ip.Completer.completions(line, len(line))]
        assert found == [("dev", "HERO (Device)"), ("laser", "HERO (Laser)")], (line, found)  # no Python keywords first
    with provisionalcompleter():
        found = [(c.text, c.type) for c in ip.Completer.completions("%heros connect la", 17)]
    assert found == [("laser", "HERO (Laser)")]


def test_plot_magic_plots_an_event_and_says_what_is_wrong(ip: Any, jspawn: Any, realm: str) -> None:
    jspawn(realm, "TemperatureController:cryo")
    plot = ip.run_line_magic("heros", "plot cryo.temperature_changed")
    wait_until(lambda: plot.plot.samples >= 3, 10, "samples")
    assert plot.unit == "K" and plot.plot.traces == ["cryo.temperature_changed"]
    again = ip.run_line_magic("heros", "plot cryo.temperature")  # an attribute: through the event that publishes it
    assert again.name == "cryo.temperature_changed" and plot.plot._closed  # the same plot again replaces the old one
    with pytest.raises(UsageError, match=r"HERO 'cryo' publishes no event with the values of 'setpoint'; its events: temperature_changed"):
        ip.run_line_magic("heros", "plot cryo.setpoint")
    with pytest.raises(UsageError, match="%heros plot needs NAME.EVENT"):
        ip.run_line_magic("heros", "plot cryo")


def test_a_panel_follows_its_hero_going_and_coming_back(ip: Any, realm: str, jspawn: Any) -> None:
    server = jspawn(realm, "Laser:laser")
    first = ip.run_line_magic("heros", "connect laser")
    panel = magics(ip).panels[(realm, "laser")]
    server.kill()
    wait_until(lambda: not panel.alive, 10, "the panel to grey out")
    assert "heros-disconnected" in panel.widget._dom_classes and "is gone" in panel.conn.value
    jspawn(realm, "Laser:laser")
    wait_until(lambda: panel.rebinds == 1 and panel.alive, 15, "the rebind")
    assert ip.user_ns["laser"] is panel.proxy is not first
    assert ip.user_ns["laser"].wavelength == 532


def test_unload_closes_everything(realm: str, spawn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shell = ipython_shell()
    monkeypatch.setenv("HEROS_REALM", realm)
    spawn(realm, "Device:dev")
    shell.run_line_magic("load_ext", "heros_jupyter")
    m = magics(shell)
    proxy = shell.run_line_magic("heros", "connect dev")
    panel = m.panels[(realm, "dev")]
    observer = m.registry(realm)._observer
    shell.run_line_magic("unload_ext", "heros_jupyter")
    shell.user_ns.pop("dev", None)
    assert panel.closed and observer._hero_destroyed and m.registries == {} and m.pool._shutdown
    assert "heros" not in shell.magics_manager.magics["line"] and m not in shell.configurables
    with provisionalcompleter():
        assert "connect" not in [c.text for c in shell.Completer.completions("%heros con", 10)]
    assert "application/vnd.jupyter.widget-view+json" not in proxy._repr_mimebundle_()
    with pytest.raises(UsageError, match="Line magic function `%heros` not found"):
        shell.run_line_magic("heros", "list")


def test_the_tables_connect_button_connects_or_says_why(ip: Any, spawn: Any, realm: str) -> None:
    from heros_jupyter.table import DiscoveryTable

    spawn(realm, "Device:dev")
    m = magics(ip)
    reg = m.registry(realm)
    wait_until(lambda: "dev" in reg.names(), 10, "discovery")
    table = DiscoveryTable(reg, m._connect_from_table)
    assert set(table.rows) == {"dev"} and "heros-connect-dev" in table.rows["dev"].children[-1]._dom_classes
    table.rows["dev"].children[-1].click()
    wait_until(lambda: len(table.panels.children) == 1, 10, "the panel under the table")
    assert table.panels.children[0] is m.panels[(realm, "dev")].widget and ip.user_ns["dev"].add(2, 2) == 4
    m.discovery_timeout = 0.3
    m._connect_from_table("ghost", table)
    wait_until(lambda: "could not connect to 'ghost'" in html.unescape(table.status.value), 10, "the error under the table")
    assert "heros-panel-dev" in table.panels.children[0]._dom_classes
    table.close()
    assert table.grid.comm is None


def test_rerunning_discover_replaces_the_table(ip: Any, spawn: Any, realm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    m = magics(ip)
    monkeypatch.setattr(ip, "kernel", object(), raising=False)  # as in a kernel: tables, not text
    first = ip.run_line_magic("heros", "discover")
    second = ip.run_line_magic("heros", "discover")
    tagged = ip.run_line_magic("heros", "discover --tag optics")
    assert first.closed and not second.closed and not tagged.closed and m.tables == [second, tagged]
    assert first.widget.comm is None and tagged.tag == "optics"


def test_reload_ext_gives_one_fresh_extension(ip: Any, spawn: Any, realm: str) -> None:
    spawn(realm, "Device:dev")
    ip.run_line_magic("heros", "connect dev")
    old = magics(ip)
    ip.run_line_magic("load_ext", "heros_jupyter")  # a second load is a no-op
    assert magics(ip) is old
    ip.run_line_magic("reload_ext", "heros_jupyter")
    new = magics(ip)
    assert new is not old and old.panels == {} and old.bridge._closed
    assert [c for c in ip.configurables if isinstance(c, HerosMagics)] == [new]
    assert isinstance(ip.run_line_magic("heros", "connect dev"), RemoteHERO)
