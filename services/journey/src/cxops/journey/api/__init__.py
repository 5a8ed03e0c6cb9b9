"""Journey's HTTP routers, mounted under ``/v1/journey``."""
