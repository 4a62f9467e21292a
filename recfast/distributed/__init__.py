"""Fits on a Dask (``dask.distributed``) cluster: ``pip install 'recfast[distributed]'``.

``MatrixFactorization(...).fit(ratings, client=client)`` runs DSGD (:mod:`.dsgd`) over the
cluster's workers, every block update being the native ``sgd_mf_epoch`` on the worker that holds
the block; the result is an ordinary fitted ``MatrixFactorization``. Importing this package does
not import dask; the fit does.
"""

from __future__ import annotations

from recfast.distributed.dsgd import fit_dsgd, is_dask_dataframe

__all__ = ["fit_dsgd", "is_dask_dataframe"]
