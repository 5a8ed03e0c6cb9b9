"""Scorecard's HTTP routers: thin, they validate, call a use case and shape the answer."""
