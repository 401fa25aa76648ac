"""Security: tracebacks kept out of error replies, mutual TLS, and zenoh access control for HEROs.

Every zenoh endpoint here is on 127.0.0.1 with multicast scouting off; the certificates are made
for each run by ``tests/certs.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from heros import RemoteHERO, RemoteHEROError


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
