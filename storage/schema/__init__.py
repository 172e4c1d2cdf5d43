"""Numbered SQL migrations (data files; see storage/migrations.py)."""
