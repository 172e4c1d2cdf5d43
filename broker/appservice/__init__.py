"""Matrix application services: registration files, the as_token's requests (masquerading,
registration of namespaced users, ``/ping``), the transactions pushed to each service and the
queries asked of it (docs/admin/application-services.md)."""
