"""Broadcasts from the portal to chosen members of an organisation: who they reach
(:mod:`.audience`), the job that reaches them (:mod:`.jobs`), the service the admin API and
commands call (:mod:`.service`) and its wiring (:mod:`.wiring`).  See docs/admin/broadcasts.md."""
