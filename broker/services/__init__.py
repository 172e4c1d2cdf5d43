"""The service layer: what endpoints (client, federation, admin, application) ask the node to
do.  Services take their stores and collaborators in their constructors, validate in domain
terms and raise :mod:`broker.errors`; they never see HTTP."""
