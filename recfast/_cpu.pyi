"""Type stub of the compiled module recfast._cpu (csrc/bindings). Arrays must already have the
exact dtype and be C-contiguous: the bindings never convert (index arrays especially). A wrong
dtype or layout raises TypeError, a wrong shape, index or code ValueError."""

import numpy as np
import numpy.typing as npt

__version__: str
openmp: bool

def codes() -> dict[str, dict[str, int]]:
    """{"activation": {"identity": 0, "relu": 1, ...}, "cell": {"rnn": 0, "gru": 1, "lstm": 2}},
    from the C++ enums (recfast/_codes.py holds the same tables)."""

def simd_level() -> str: ...
def omp_max_threads() -> int: ...
def sgd_mf_epoch(
    rows: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    cols: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    values: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    # float16 factors (storage) with float32 values (arithmetic), or the values' dtype
    user_factors: npt.NDArray[np.float16] | npt.NDArray[np.float32] | npt.NDArray[np.float64],
    item_factors: npt.NDArray[np.float16] | npt.NDArray[np.float32] | npt.NDArray[np.float64],
    user_bias: npt.NDArray[np.floating] | None = None,
    item_bias: npt.NDArray[np.floating] | None = None,
    user_accum: npt.NDArray[np.floating] | None = None,
    item_accum: npt.NDArray[np.floating] | None = None,
    order: npt.NDArray[np.int64] | None = None,
    block_ptr: npt.NDArray[np.int64] | None = None,
    n_blocks: int = 0,
    *,
    learning_rate: float,
    regularization: float,
    bias_regularization: float,
    global_mean: float,
    num_threads: int = 1,
) -> float: ...
def float_to_half(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float16]:
    """(n,) float32 -> float16, rounded to nearest even: the conversion of the float16 factor
    storage (csrc/include/recfast/half.hpp), exposed for the tests."""

def half_to_float(x: npt.NDArray[np.float16]) -> npt.NDArray[np.float32]:
    """(n,) float16 -> float32, exact."""

def sgd_mf_last_core_share() -> float:
    """The least-served thread's share of its core in this thread's last block-scheduled
    sgd_mf_epoch: about 1 on a quiet machine, 0.5 beside another process; 1 after one thread."""

def mf_block_layout(
    rows: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    cols: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    values: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    n_users: int,
    n_items: int,
    n_blocks: int,
    seed: int | None = None,
    num_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, npt.NDArray[np.int64]]: ...
def bias_activation(
    y: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    bias: npt.NDArray[np.floating] | None = None,
    activation: int = 0,
    num_threads: int = 1,
) -> None: ...
def activation_backward(
    grad_out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    y: npt.NDArray[np.floating],
    grad_pre: npt.NDArray[np.floating],
    grad_bias: npt.NDArray[np.floating] | None = None,
    activation: int = 0,
    num_threads: int = 1,
) -> None: ...

# Native GEMM over NumPy's or SciPy's BLAS (recfast/_blas.py installs it at import).
def blas_install(
    sgemm: object, dgemm: object, set_threads: int = 0, get_threads: int = 0
) -> None: ...
def blas_install64(
    sgemm: int,
    dgemm: int,
    sgemv: int = 0,
    dgemv: int = 0,
    set_threads: int = 0,
    get_threads: int = 0,
) -> None: ...
def blas_installed() -> bool: ...
def blas_scoped_threads(n: int, get_threads: int) -> int: ...
def blas_gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> None: ...

# Recurrent sequences (csrc/cpu/rnn_cpu.cpp). cell: 0 rnn, 1 gru, 2 lstm; activation: the codes of
# recfast._codes.ACTIVATION_CODES (see codes()). Optional arrays are None; see
# recfast/_backends/reference/rnn.py for the cache layout (states (T + 1, N, H),
# cells (T + 1, N, H), gates (T, N, 4H)).
def rnn_forward(
    cell: int,
    activation: int,
    xs: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    lengths: npt.NDArray[np.int64] | None,
    out: np.ndarray | None,
    h_last: np.ndarray,
    c_last: np.ndarray | None,
    states: np.ndarray | None,
    cells: np.ndarray | None,
    gates: np.ndarray | None,
    num_threads: int = 1,
) -> None: ...
def rnn_backward(
    cell: int,
    activation: int,
    xs: np.ndarray,
    W: np.ndarray,
    U: np.ndarray,
    lengths: npt.NDArray[np.int64] | None,
    states: np.ndarray,
    cells: np.ndarray | None,
    gates: np.ndarray | None,
    grad_out: np.ndarray | None,
    grad_h_last: np.ndarray | None,
    grad_c_last: np.ndarray | None,
    grad_xs: np.ndarray | None,
    grad_h0: np.ndarray | None,
    grad_c0: np.ndarray | None,
    grad_W: np.ndarray | None,
    grad_U: np.ndarray | None,
    grad_b_ih: np.ndarray | None,
    grad_b_hh: np.ndarray | None,
    num_threads: int = 1,
) -> None: ...

# conv2d and max-pooling, NHWC (recfast/_backends/cpu/conv2d.py adapts them; recfast.conv2d
# validates).
def conv2d_forward(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    w: npt.NDArray[np.floating],
    bias: npt.NDArray[np.floating] | None,
    out: npt.NDArray[np.floating],
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pt: int,
    pl: int,
    activation: int = 0,
    num_threads: int = 1,
) -> None: ...
def conv2d_backward(
    grad_out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    x: npt.NDArray[np.floating],
    w: npt.NDArray[np.floating],
    grad_x: npt.NDArray[np.floating] | None,
    grad_w: npt.NDArray[np.floating] | None,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    pt: int,
    pl: int,
    num_threads: int = 1,
) -> None: ...
def max_pool2d_forward(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    out: npt.NDArray[np.floating],
    indices: npt.NDArray[np.int64],
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    num_threads: int = 1,
) -> None: ...
def max_pool2d_backward(
    grad_out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    indices: npt.NDArray[np.int64],
    grad_x: npt.NDArray[np.floating],
    num_threads: int = 1,
) -> None: ...

# The whole dense layer (csrc/cpu/dense_cpu.cpp); activation: recfast._codes.ACTIVATION_CODES.
def dense_forward(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray | None,
    out: np.ndarray,
    activation: int = 0,
    num_threads: int = 1,
) -> None: ...
def dense_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    W: np.ndarray,
    output: np.ndarray | None,
    scratch: np.ndarray | None,
    grad_x: np.ndarray | None,
    grad_W: np.ndarray | None,
    grad_b: np.ndarray | None,
    activation: int = 0,
    num_threads: int = 1,
) -> None: ...

# Implicit feedback (csrc/cpu/implicit_cpu.cpp, implicit_kernel.inc): top-k, iALS, BPR; the
# adapters in recfast/_backends/cpu/implicit.py pass every argument positionally.
def topk(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray | None,
    items: npt.NDArray[np.int64] | None,
    banned: npt.NDArray[np.uint8] | None,
    exclude_indptr: npt.NDArray[np.int64] | None,
    exclude_indices: np.ndarray | None,
    n: int,
    out_items: npt.NDArray[np.int64],
    out_scores: np.ndarray,
    num_threads: int = 1,
) -> None: ...
def als_half_sweep(
    indptr: npt.NDArray[np.int64],
    indices: np.ndarray,
    confidence: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    gram: np.ndarray | None,
    rows: npt.NDArray[np.int64] | None,
    regularization: float,
    cg_steps: int = 3,
    num_threads: int = 1,
) -> int: ...
def bpr_epoch(
    indptr: npt.NDArray[np.int64],
    indices: np.ndarray,
    row_of: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray | None,
    n_samples: int,
    learning_rate: float,
    regularization: float,
    seed: int,
    popularity: bool = False,
    num_threads: int = 1,
) -> tuple[float, int, int, int]: ...
