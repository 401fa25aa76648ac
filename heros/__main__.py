"""``python -m heros``: the ``heros`` command (see ``heros.cli``)."""

from __future__ import annotations

from heros.cli import main

raise SystemExit(main())
