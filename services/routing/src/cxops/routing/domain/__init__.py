"""Routing's pure core: no I/O, no framework; matching, relaxation, escalation and staffing."""
