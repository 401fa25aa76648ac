"""``heros serve``: start HEROs from a class or from BOSS-like JSON documents, and serve until Ctrl-C.

A document describes one HERO as the BOSS starter's do (``../shared/SPEC.md`` section 11)::

    {"_id": "camera", "classname": "heros.demo.instruments.Camera",
     "arguments": {"laser": "$laser"}, "tags": ["optics"]}

A file may hold one document, a list of them, or a CouchDB result ``{"rows": [{"doc": ...}]}``
(nested as deep as wanted). An argument string ``"$name"`` becomes ``RemoteHERO(name, realm)``,
``"@_boss_loop"`` an asyncio loop running in a thread. Unlike BOSS, every HERO runs in this one
process, HEROs of one file start in dependency order, and a document may name its ``realm``.
Classes that are not LocalHEROs are wrapped as BOSS does: the class is built with its arguments,
then served under the document's name. A ``datasource`` block (``{"async": false, "interval": 5.0,
"observables": {...}}``) makes the HERO a datasource as BOSS does: ``PolledLocalDatasourceHERO``
polled on the ``@_boss_loop`` loop every ``interval`` seconds, or with ``"async": true`` a
``LocalDatasourceHERO``; its conversions are checked before any HERO starts (never ``eval``ed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heros import keys
from heros.datasource.datasource import LocalDatasourceHERO, PolledLocalDatasourceHERO
from heros.datasource.observables import ObservableProcessor
from heros.local import LocalHERO
from heros.remote import RemoteHERO

from ._progress import Progress
from ._values import UsageError, one_line, parse_value

__all__ = ["HeroSpec", "cmd_serve", "load_documents", "specs_from_documents"]

#: Seconds a ``$name`` argument waits for its HERO to appear (``--wait``).
REFERENCE_WAIT = 10.0
_UNSUPPORTED_WRAPS = ("qcodes", "pylablib")
#: What BOSS assumes for the keys a ``datasource`` block leaves out.
DATASOURCE_DEFAULTS: dict[str, Any] = {"async": False, "interval": 5.0, "observables": {}}


@dataclass
class HeroSpec:
    """One HERO to start."""

    name: str
    classname: str
    realm: str
    arguments: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    decorators: list[tuple[str, str]] = field(default_factory=list)
    datasource: dict[str, Any] | None = None  # the document's datasource block, defaults filled in

    def references(self) -> set[str]:
        """Names of the HEROs its ``$name`` arguments refer to."""
        found: set[str] = set()
        _walk_references(self.arguments, found)
        return found


def _walk_references(value: Any, found: set[str]) -> None:
    if isinstance(value, str) and value.startswith("$") and len(value) > 1:
        found.add(value[1:])
    elif isinstance(value, dict):
        for item in value.values():
            _walk_references(item, found)
    elif isinstance(value, list):
        for item in value:
            _walk_references(item, found)


def load_documents(data: Any, where: str) -> list[dict[str, Any]]:
    """The HERO documents in ``data``: one document, a list, or CouchDB ``{"rows": [{"doc": ...}]}``."""
    if isinstance(data, list):
        return [doc for item in data for doc in load_documents(item, where)]
    if isinstance(data, dict) and "rows" in data and "_id" not in data:
        rows = data["rows"]
        if not isinstance(rows, list):
            raise UsageError(f"{where}: 'rows' must be a list")
        return [doc for row in rows for doc in load_documents(row.get("doc", row) if isinstance(row, dict) else row, where)]
    if isinstance(data, dict):
        return [data]
    raise UsageError(f"{where}: expected a HERO document (a JSON object), a list of them or {{'rows': [...]}}, got {type(data).__name__}")


def specs_from_documents(docs: list[dict[str, Any]], where: str, realm: str, extra_tags: list[str]) -> list[HeroSpec]:
    """Check each document and turn it into a ``HeroSpec``; every mistake names the document."""
    specs = []
    for i, doc in enumerate(docs, 1):
        name = doc.get("_id")
        label = f"{where}: HERO {name!r}" if isinstance(name, str) else f"{where}: document {i}"
        if not isinstance(name, str) or not name:
            raise UsageError(f"{label} has no '_id' (the HERO's name)")
        classname = doc.get("classname")
        if not isinstance(classname, str) or not classname:
            raise UsageError(f"{label} has no 'classname' (like 'package.module.Class')")
        arguments = doc.get("arguments", {})
        if not isinstance(arguments, dict):
            raise UsageError(f"{label}: 'arguments' must be an object of keyword arguments")
        tags = doc.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise UsageError(f"{label}: 'tags' must be a list of strings")
        decorators = doc.get("extra_decorators", [])
        if not isinstance(decorators, list) or not all(
            isinstance(d, list) and len(d) == 2 and all(isinstance(x, str) for x in d) for d in decorators
        ):
            raise UsageError(f"{label}: 'extra_decorators' must be a list of [method, 'module.decorator'] pairs")
        datasource = _datasource_block(doc.get("datasource"), label)
        if doc.get("wrap_target", "auto") in _UNSUPPORTED_WRAPS:
            raise UsageError(f"{label}: wrap_target {doc['wrap_target']!r} is not supported by 'heros serve'")
        doc_realm = doc.get("realm", realm)
        for value, what in ((name, "name"), (doc_realm, "realm")):
            try:
                keys.validate_name(value, what)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"{label}: {exc}") from None
        specs.append(HeroSpec(name, classname, doc_realm, dict(arguments), [*tags, *extra_tags], [tuple(d) for d in decorators],
                              datasource))
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{where}: HERO {twice[0]!r} is described more than once")
    return _in_start_order(specs, where)


def _datasource_block(block: Any, label: str) -> dict[str, Any] | None:
    """A document's ``datasource`` block with BOSS's defaults filled in, checked (conversions compiled)."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise UsageError(f"{label}: 'datasource' must be an object like {{\"async\": false, \"interval\": 5, \"observables\": {{}}}}")
    unknown = sorted(set(block) - set(DATASOURCE_DEFAULTS))
    if unknown:  # BOSS ignores them too, but a misspelt key would silently poll at the default
        print(f"heros: note: {label}: 'datasource' keys {', '.join(map(repr, unknown))} are ignored "
              f"(known: {', '.join(DATASOURCE_DEFAULTS)})", file=sys.stderr, flush=True)
    config = {**DATASOURCE_DEFAULTS, **{k: v for k, v in block.items() if k in DATASOURCE_DEFAULTS}}
    if not isinstance(config["async"], bool):
        raise UsageError(f"{label}: datasource 'async' must be true or false, not {config['async']!r}")
    interval = config["interval"]
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < float("inf"):
        raise UsageError(f"{label}: datasource 'interval' must be a positive number of seconds, not {interval!r}")
    if config["observables"] is None:
        config["observables"] = {}
    try:
        ObservableProcessor(config["observables"])  # every conversion is checked now, before any HERO starts
    except ValueError as exc:
        raise UsageError(f"{label}: datasource: {one_line(str(exc))}") from None
    return config


def _in_start_order(specs: list[HeroSpec], where: str) -> list[HeroSpec]:
    """HEROs referred to with ``$name`` by others of the same file start first."""
    by_name = {s.name: s for s in specs}
    ordered: list[HeroSpec] = []
    state: dict[str, str] = {}

    def visit(spec: HeroSpec, chain: list[str]) -> None:
        if state.get(spec.name) == "done":
            return
        if state.get(spec.name) == "active":
            raise UsageError(f"{where}: HEROs refer to each other in a cycle: {' -> '.join([*chain, spec.name])}")
        state[spec.name] = "active"
        for ref in sorted(spec.references()):
            if ref in by_name:
                visit(by_name[ref], [*chain, spec.name])
        state[spec.name] = "done"
        ordered.append(spec)

    for spec in specs:
        visit(spec, [])
    return ordered


def import_object(path: str) -> Any:
    """The object named ``module:attr`` or ``package.module.attr``."""
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module or not attr:
        raise UsageError(f"{path!r} must name a class as module:Class or package.module.Class")
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import {module!r} for {path!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"importing {module!r} failed: {type(exc).__name__}: {one_line(str(exc))}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module!r} has no {attr!r}") from None
    return obj


def hero_class(classname: str, decorators: list[tuple[str, str]], datasource: dict[str, Any] | None = None,
               loop: asyncio.AbstractEventLoop | None = None) -> type[LocalHERO]:
    """The class to instantiate: a LocalHERO subclass as it is, any other class wrapped as BOSS does.

    The wrapper's HERO side is ``LocalHERO``, or, for a ``datasource`` block (``DATASOURCE_DEFAULTS``
    filled in), ``LocalDatasourceHERO`` (``"async": true``) or ``PolledLocalDatasourceHERO``
    polling on ``loop``, which get the block's ``observables`` (and ``interval``). A LocalHERO
    subclass with a ``datasource`` block must be such a datasource class itself; it gets them as
    keyword arguments.
    """
    cls = import_object(classname)
    if not isinstance(cls, type):
        raise UsageError(f"{classname!r} is not a class")
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__doc__": cls.__doc__}
    for method, decorator_path in decorators:
        func = cls.__dict__.get(method, getattr(cls, method, None))
        if func is None:
            raise UsageError(f"extra decorator for {classname}: the class has no method {method!r}")
        decorator = import_object(decorator_path)
        namespace[method] = decorator(func)
    mixin: type[LocalHERO] = LocalHERO
    mixin_arguments: dict[str, Any] = {}
    if datasource is not None:
        mixin = LocalDatasourceHERO if datasource["async"] else PolledLocalDatasourceHERO
        mixin_arguments["observables"] = datasource["observables"]
        if not datasource["async"]:
            mixin_arguments.update(interval=datasource["interval"], loop=loop)
    if issubclass(cls, LocalHERO):
        if not issubclass(cls, mixin):
            raise UsageError(f"{classname!r} is a LocalHERO but not a {mixin.__name__}, which its 'datasource' block asks for; "
                             f"derive it from {mixin.__name__}, or name a class that is no HERO (it is wrapped as BOSS does)")
        if mixin_arguments:
            def init_datasource(self: Any, *args: Any, **kwargs: Any) -> None:
                cls.__init__(self, *args, **{**mixin_arguments, **kwargs})

            namespace["__init__"] = init_datasource
        return type(cls.__name__, (cls,), namespace) if decorators or mixin_arguments else cls

    def __init__(self: Any, name: str, *, realm: str = "heros", tags: list[str] | None = None, session_manager: Any = None,
                 **kwargs: Any) -> None:
        cls.__init__(self, **kwargs)
        mixin.__init__(self, name, realm=realm, tags=tags, session_manager=session_manager, **mixin_arguments)

    namespace["__init__"] = __init__
    try:
        return type(f"{cls.__name__}_HERO", (cls, mixin), namespace)
    except TypeError as exc:
        raise UsageError(f"{classname!r} cannot be served as a HERO: {exc}") from None


class _Resolver:
    """Turns ``$name`` and ``@_boss_loop`` arguments into objects, and closes what it opened."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.proxies: list[RemoteHERO] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def boss_loop(self) -> asyncio.AbstractEventLoop:
        """The loop ``@_boss_loop`` arguments get, and polled datasources poll on (started on first use)."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="heros-serve-loop", daemon=True).start()
        return self.loop

    def resolve(self, value: Any, spec: HeroSpec) -> Any:
        if isinstance(value, str) and value.startswith("$") and len(value) > 1:
            return self._remote(value[1:], spec)
        if value == "@_boss_loop":
            return self.boss_loop()
        if isinstance(value, dict):
            return {k: self.resolve(v, spec) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, spec) for v in value]
        return value

    def _remote(self, name: str, spec: HeroSpec) -> RemoteHERO:
        try:
            with Progress(f"HERO {spec.name!r} waits for {name!r}"):
                proxy = RemoteHERO(name, realm=spec.realm, discovery_timeout=self.wait)
        except NameError:
            raise UsageError(
                f"HERO {spec.name!r} refers to '${name}', but no HERO {name!r} answered in realm {spec.realm!r} within {self.wait:g} s"
            ) from None
        except (TypeError, ValueError) as exc:
            raise UsageError(f"HERO {spec.name!r}: argument '${name}': {exc}") from None
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self.proxies:
            proxy._destroy_hero()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)


def start(spec: HeroSpec, resolver: _Resolver) -> LocalHERO:
    """Construct and serve one HERO."""
    # a polled datasource polls on the loop @_boss_loop arguments get, as BOSS polls on its worker's loop
    loop = resolver.boss_loop() if spec.datasource is not None and not spec.datasource["async"] else None
    cls = hero_class(spec.classname, spec.decorators, spec.datasource, loop)
    kwargs = resolver.resolve(spec.arguments, spec)
    if spec.tags:
        kwargs["tags"] = list(spec.tags)
    try:
        return cls(spec.name, realm=spec.realm, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's constructor refused its arguments
        raise UsageError(f"cannot start HERO {spec.name!r} ({spec.classname}): {type(exc).__name__}: {one_line(str(exc))}") from None


def _specs(args: argparse.Namespace) -> list[HeroSpec]:
    target = args.target
    path = Path(target)
    if target.endswith(".json") or path.is_file():
        if args.name is not None or args.arg:
            raise UsageError("--name and --arg apply to 'heros serve module:Class', not to a config file")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"config file {target!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read config file {target!r}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"config file {target!r} is not valid JSON: {exc}") from None
        return specs_from_documents(load_documents(data, target), target, args.realm, list(args.tag))
    if args.name is None:
        raise UsageError(f"'heros serve {target}' needs --name NAME (the HERO's name)")
    arguments: dict[str, Any] = {}
    for item in args.arg:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--arg expects key=value, got {item!r}")
        arguments[key] = parse_value(text)
    doc = {"_id": args.name, "classname": target, "arguments": arguments}
    return specs_from_documents([doc], "heros serve", args.realm, list(args.tag))


def cmd_serve(args: argparse.Namespace) -> int:
    """``heros serve module:Class --name N`` or ``heros serve config.json``: serve until Ctrl-C."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to the user are importable
    specs = _specs(args)
    resolver = _Resolver(args.wait)
    started: list[LocalHERO] = []
    try:
        for spec in specs:
            with Progress(f"starting {spec.name!r}"):
                hero = start(spec, resolver)
            started.append(hero)
            print(f"started {spec.name!r} ({type(hero).__name__}) in realm {spec.realm!r}", file=sys.stderr, flush=True)
        names = ", ".join(f"{h._name} ({type(h).__name__})" for h in started)
        realms = sorted({s.realm for s in specs})
        print(f"serving {len(started)} HERO{'s' if len(started) != 1 else ''} in realm {', '.join(map(repr, realms))}: {names}; Ctrl-C to stop", flush=True)
        stop = threading.Event()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for hero in reversed(started):
            hero._destroy_hero()
        resolver.close()
    print("stopped", file=sys.stderr, flush=True)
    return 0
