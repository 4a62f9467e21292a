"""Backend probing and selection: the one place that decides which implementation runs.

The backends and ops are the rows of ``recfast/_registry.py``. Probing never raises: each backend
is live or carries the reason it is not. Selection order: ``backend=`` argument >
:func:`use_backend` context > ``RECFAST_BACKEND`` environment variable > the array kind's
automatic order (host arrays: cpu > numba > reference; device arrays: cuda > cupy). An explicitly
requested backend is honoured or raises :class:`BackendUnavailableError` with the probe's reason;
an automatic fall back to ``reference`` warns once per op.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from recfast import _registry as reg
from recfast._kinds import NUMPY, ArrayKind

BACKENDS = reg.NAMES


class BackendUnavailableError(RuntimeError):
    """A requested backend is not live here, or does not implement the operation."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    reason: str  # "" when available
    device: str = "cpu"
    ops: tuple[str, ...] = ()  # the ops this backend implements (its op files, live or not)


@functools.cache
def _probe(name: str) -> tuple[ModuleType | None, str]:
    """(backend package or None, reason). Imports lazily and caches; never raises."""
    spec = reg.BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    try:
        pkg = importlib.import_module(spec.package)
        reason = pkg.probe()
    except Exception as exc:  # a broken optional dependency must not break `import recfast`
        return None, f"{spec.package} cannot be imported ({type(exc).__name__}: {exc})"
    return (None, reason) if reason else (pkg, "")


@functools.cache
def _family_module(name: str, family: str) -> ModuleType | None:
    mod, _ = _probe(name)
    if mod is None or importlib.util.find_spec(f"{mod.__name__}.{family}") is None:
        return None
    return importlib.import_module(f"{mod.__name__}.{family}")


def implementation(name: str, op: str) -> Callable[..., Any] | None:
    """Backend ``name``'s function for ``op``, or None (not live, or not implemented)."""
    mod = _family_module(name, reg.OPS[op])
    return getattr(mod, op, None) if mod is not None else None


@functools.cache
def implemented_ops(name: str) -> tuple[str, ...]:
    """The ops backend ``name`` implements: from its op modules when it is live, else from which
    op files its package holds (without importing them: their dependencies may be missing)."""
    if _probe(name)[0] is not None:
        return tuple(op for op in reg.OPS if implementation(name, op) is not None)
    spec = reg.BY_NAME[name]
    try:
        pkg_spec = importlib.util.find_spec(spec.package)
    except Exception:
        return ()
    if pkg_spec is None or not pkg_spec.submodule_search_locations:
        return ()
    from pathlib import Path

    folders = [Path(p) for p in pkg_spec.submodule_search_locations]

    def defines(path: Path, op: str) -> bool:  # a family file may implement only some of its ops
        return path.is_file() and f"\ndef {op}(" in path.read_text()

    return tuple(
        op for op, fam in reg.OPS.items() if any(defines(f / f"{fam}.py", op) for f in folders)
    )


@functools.cache
def cpu_module() -> Any:
    """The compiled ``recfast._cpu`` module, or None."""
    return importlib.import_module("recfast._cpu") if _probe("cpu")[0] is not None else None


def backends() -> list[BackendInfo]:
    """Every backend: live or not (and why), its device and the ops it implements."""
    out = []
    for spec in reg.BACKENDS:
        mod, reason = _probe(spec.name)
        out.append(
            BackendInfo(spec.name, mod is not None, reason, spec.device, implemented_ops(spec.name))
        )
    return out


_context: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "recfast_backend", default=None
)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in reg.BY_NAME:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager: calls inside it use backend ``name`` unless they pass ``backend=``."""
    token = _context.set(_check_name(name))
    try:
        yield
    finally:
        _context.reset(token)


def _env_backend() -> str | None:
    return os.environ.get("RECFAST_BACKEND") or None


try:  # os.environ.get costs ~0.6 us (it encodes the key), a tenth of a per-step call
    _ENV_DATA = os.environ._data  # type: ignore[attr-defined]
    _ENV_KEY = os.environ.encodekey("RECFAST_BACKEND")  # type: ignore[attr-defined]
    _decode = os.environ.decodevalue  # type: ignore[attr-defined]

    def _env_backend() -> str | None:  # noqa: F811  (the same lookup, without re-encoding)
        v = _ENV_DATA.get(_ENV_KEY)
        return _decode(v) or None if v is not None else None
except AttributeError:  # pragma: no cover - a platform whose os.environ differs
    pass


_warned: set[str] = set()
# Automatic choices, per (op, array kind): probing is cached, so the choice cannot change. Saves
# the search on every call of the per-step ops, whose whole budget is a few microseconds.
_auto: dict[tuple[str, str], tuple[str, Callable[..., Any]]] = {}


def _named(op: str, name: str, kind: ArrayKind) -> tuple[str, Callable[..., Any]]:
    _check_name(name)
    mod, reason = _probe(name)
    if mod is None:
        raise BackendUnavailableError(f"backend {name!r} is not available: {reason}")
    device = reg.BY_NAME[name].device
    if device != "any" and device != kind.device:
        where = "host" if device == "cpu" else "GPU"
        raise BackendUnavailableError(
            f"backend {name!r} runs on the {where} and cannot take {kind.name} arrays (device "
            f"{kind.device}); pass arrays of that device or another backend"
        )
    if kind.xp is None and name == "reference":
        raise BackendUnavailableError(
            f"backend 'reference' needs an array-API namespace, which {kind.name} objects lack"
        )
    fn = implementation(name, op)
    if fn is None:
        raise BackendUnavailableError(f"backend {name!r} does not implement {op}")
    return name, fn


def select(
    op: str, backend: str | None = None, kind: ArrayKind = NUMPY
) -> tuple[str, Callable[..., Any]]:
    """Return ``(backend name, implementation of op)`` for arrays of ``kind``."""
    name = backend if backend is not None else _context.get()
    if name is None:
        name = _env_backend()
    if name is not None:
        return _named(op, name, kind)
    hit = _auto.get((op, kind.name))
    if hit is not None:
        return hit
    tried = []
    for name in reg.auto_order(kind.device):
        mod, reason = _probe(name)
        fn = implementation(name, op) if mod is not None else None
        if fn is not None and (name != "reference" or kind.xp is not None):
            if name == "reference" and kind.device == "cpu" and op not in _warned:
                _warned.add(op)
                warnings.warn(
                    f"recfast.{op}: no fast backend is available for {kind.name} arrays; running "
                    "the slow reference (see recfast.show_config())",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _auto[(op, kind.name)] = (name, fn)
            return name, fn
        tried.append(f"{name}: {reason or 'does not implement ' + op}")
    hint = (
        "; pass backend='reference' to run the slow array-API reference on the device"
        if kind.device == "cuda" and kind.xp is not None
        else ""
    )
    raise BackendUnavailableError(
        f"no backend implements {op} for {kind.name} arrays ({'; '.join(tried)}){hint}"
    )
