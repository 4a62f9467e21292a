"""Fitted parameters kept on the host and shown in the array kind of the data a model was fitted
on: fit on NumPy, get NumPy attributes; fit on PyTorch CPU tensors, get tensors that share the
same memory (``torch.from_numpy``: no copy, and training updates stay visible in them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast._kinds import NUMPY, ArrayKind


def host(value: Any) -> Any:
    """A NumPy view of a PyTorch CPU tensor (the array itself for NumPy; None stays None)."""
    if value is None or type(value) is np.ndarray:
        return value
    kind = kinds.of((value,))
    if not kind.host:
        raise TypeError(
            f"model parameters live on the host; got a {kind.name} array (device {kind.device})"
        )
    return kind.unwrap_one(value)


def host_copy(value: Any) -> Any:
    """:func:`host`, and a NumPy copy of a device array (ids and ratings handed to a model that a
    device fit left on the host)."""
    if value is None or type(value) is np.ndarray:
        return value
    kind = kinds.of((value,))
    return kind.unwrap_one(value) if kind.host else kind.to_numpy(value)


class Kinded:
    """Mixin: ``self._arrays`` holds the fitted arrays as NumPy, ``self._kind`` the fit's kind
    (and ``self._device`` its device, after a fit on device arrays)."""

    _kind: ArrayKind = NUMPY

    def _show(self, a: Any) -> Any:
        if a is None or self._kind is NUMPY:
            return a
        if isinstance(a, dict):
            return {k: self._show(v) for k, v in a.items()}
        if not self._kind.host:  # after a device fit: a copy on the fit's device
            return self._kind.xp.asarray(a, device=self.__dict__.get("_device"))
        return self._kind.wrap(a)

    def _host(self, name: str) -> Any:
        try:
            return self.__dict__["_arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A fit inside this block either completes or leaves the estimator as it was: its
        attributes (and the fitted arrays, which a fit replaces, never updates) are restored
        when the block raises, KeyboardInterrupt included."""
        saved = dict(self.__dict__)
        if "_arrays" in saved:
            saved["_arrays"] = dict(saved["_arrays"])
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    @property
    def array_kind_(self) -> str:
        """The array kind of the fitted attributes: "numpy", "torch", or after a device fit
        "cupy" / "torch-cuda"."""
        return self._kind.name


def kinded(name: str, doc: str = "") -> property:
    """A fitted attribute stored on the host as ``_arrays[name]`` and shown in the fit's kind."""

    def get(self: Kinded) -> Any:
        return self._show(self._host(name))

    def set_(self: Kinded, value: Any) -> None:
        if isinstance(value, dict):
            value = {k: host(v) for k, v in value.items()}
        else:
            value = host(value)
        self.__dict__.setdefault("_arrays", {})[name] = value

    return property(get, set_, doc=doc)
