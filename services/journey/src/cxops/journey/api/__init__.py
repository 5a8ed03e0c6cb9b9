"""Journey's HTTP routers: thin, they validate, call a use case and map its errors."""
