"""Security: tracebacks kept out of error replies, mutual TLS, and zenoh access control for HEROs.

Every zenoh endpoint here is on 127.0.0.1 with multicast scouting off; the certificates are made
for each run by ``tests/certs.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from certs import Authority

from heros import RemoteHERO, RemoteHEROError
from heros.security import access_rules, tls_config


def test_redacted_tracebacks_keep_type_and_message(realm: str, spawn: Callable[..., object]) -> None:
    spawn(realm, "Device:plain")
    spawn(realm, "Device:quiet", env={"HEROS_REDACT_TRACEBACKS": "1"})
    with RemoteHERO("plain", realm=realm) as plain, RemoteHERO("quiet", realm=realm) as quiet:
        with pytest.raises(ValueError) as shown:
            plain.fail("value")
        assert "Traceback" in shown.value.remote_traceback and "in fail" in str(shown.value)  # the setting is what hides it
        for kind, cls, message in (("value", ValueError, "bad value 7"), ("limit", ValueError, "above the limit"),
                                   ("custom", RemoteHEROError, "custom failure")):
            with pytest.raises(cls) as caught:
                quiet.fail(kind)
            error = caught.value
            assert isinstance(error, RemoteHEROError)
            assert error.message == message and error.remote_type == {"value": "ValueError", "limit": "LimitError", "custom": "CustomError"}[kind]
            assert error.remote_traceback == ""
            assert "Traceback" not in str(error) and "servers.py" not in str(error) and "remote traceback" not in str(error)
        with pytest.raises(ValueError, match="above the limit of 400 K") as written:
            quiet.setpoint = 500  # attribute writes take the same path
        assert written.value.remote_traceback == ""


def test_access_rules_without_a_reader_link_name_the_queries_readers_may_send() -> None:
    rules = access_rules(writers=["pc"], readers=["nb"], reader_link=None, readable=["power"])
    assert "low_pass_filter" not in rules
    acl = rules["access_control"]
    assert (acl["enabled"], acl["default_permission"]) == (True, "deny")
    by_id = {rule["id"]: rule for rule in acl["rules"]}
    assert by_id["heros-write"]["key_exprs"] == ["@object/*/**"]
    assert by_id["heros-read-query"]["key_exprs"] == ["@object/*/*/_discover/**", "@object/*/*/_capabilities/**", "@object/*/*/power/**"]
    assert "query" not in by_id["heros-read-receive"]["messages"]  # a reader serves nothing
    assert {"put", "declare_queryable", "liveliness_token"}.isdisjoint(by_id["heros-read-declare"]["messages"])
    assert acl["subjects"] == [{"id": "heros-writers", "cert_common_names": ["pc"]}, {"id": "heros-readers", "cert_common_names": ["nb"]}]
    with pytest.raises(ValueError, match="contains /"):
        access_rules(writers=["pc"], realms=["a/b"])


def test_tls_config_listens_only_where_told(tmp_path: Path) -> None:
    ca = Authority(tmp_path, "ca")
    me = ca.issue("router")
    config = tls_config(ca=ca.cert, cert=me.cert, key=me.key, mode="peer", connect=["quic/[::1]:7447"])
    assert config["listen"] == {"endpoints": []}  # not zenoh's default plain TCP listener of a peer
    assert config["transport"]["link"]["tls"]["listen_certificate"] == str(me.cert.resolve())
    (tmp_path / "locked.key").write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="encrypted private key"):
        tls_config(ca=ca.cert, cert=me.cert, key=tmp_path / "locked.key", connect=["tls/h:1"])
