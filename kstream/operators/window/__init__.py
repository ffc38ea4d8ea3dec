"""Window operators: assigners, time windows, count windows."""
