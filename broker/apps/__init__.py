"""eGov applications: registrations, their sending, delivery status and callbacks."""
