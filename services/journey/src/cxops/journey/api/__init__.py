"""The journey service's routers: thin, each validates, calls a service function and maps its
errors to problems."""
