"""Node administration: organisations, roles, the permission table and the audit log.

These are services (they raise :mod:`broker.errors`, never speak HTTP): the admin API
(:mod:`broker.admin_api`), the ``broker`` commands and the node's start-up all call them.
"""
