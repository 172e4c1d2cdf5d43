"""The plain REST API of eGov applications, `/_broker/apps/v1` (endpoints only)."""
