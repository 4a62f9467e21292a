"""The ``reference`` backend: plain array-API code, slow, sequential, obviously correct; the oracle
every backend is tested against. It runs on any array-API namespace (NumPy, CuPy, PyTorch through
array-api-compat, array_api_strict), which the tests check with ``array_api_strict`` inputs."""


def probe() -> str:
    return ""
