"""What every application endpoint shares: the prefix and the calling app."""

from __future__ import annotations

from broker.http.endpoint import Call
from storage.apps import AppRow

APPS_PREFIX = "/_broker/apps/v1"


def calling_app(call: Call) -> AppRow:
    """The app an ``Access.APP`` call comes from (the guards resolved its token)."""
    app = call.app
    if not isinstance(app, AppRow):
        raise RuntimeError("the endpoint does not declare application access")
    return app
