"""/sync: what changed for a user since a token, answered from memory where possible."""
