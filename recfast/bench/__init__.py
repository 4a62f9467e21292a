"""``python -m recfast.bench``: microbenchmarks on generated data, peers when installed."""
