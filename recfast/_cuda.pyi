"""Stubs for ``recfast._cuda``: the CUDA kernels, taking device pointers as integers (recfast's
GPU backends check the arrays first, in ``recfast/_backends/_device.py``) and the caller's
stream as an integer handle (0: the legacy default stream)."""

__version__: str

def device_status() -> str: ...
def device_count() -> int: ...
def runtime_version() -> str: ...
def codes() -> dict[str, dict[str, int]]: ...
def mf_work_size(n_blocks: int) -> int: ...
def sgd_mf_epoch(
    dtype: str,  # the factors': "float16" (float32 arithmetic), "float32" or "float64"
    index: str,
    rows: int,
    cols: int,
    values: int,
    nnz: int,
    U: int,
    V: int,
    n_users: int,
    n_items: int,
    k: int,
    ub: int,
    ib: int,
    ua: int,
    ia: int,
    order: int,
    n_order: int,
    block_ptr: int,
    n_blocks: int,
    lr: float,
    reg: float,
    breg: float,
    mu: float,
    work: int,
    work_size: int,
    stream: int,
) -> float: ...
def bias_activation(dtype: str, y: int, b: int, n: int, h: int, act: int, stream: int) -> None: ...
def activation_backward(
    dtype: str, g: int, y: int, gp: int, total: int, act: int, stream: int
) -> None: ...
def rnn_step_forward(
    dtype: str,
    cell: int,
    act: int,
    a: int,
    u: int,
    b_ih: int,
    b_hh: int,
    lengths: int,
    t: int,
    h_prev: int,
    c_prev: int,
    h_new: int,
    c_new: int,
    out_t: int,
    gates_t: int,
    N: int,
    H: int,
    stream: int,
) -> None: ...
def rnn_step_backward(
    dtype: str,
    cell: int,
    act: int,
    grad_out_t: int,
    dh_base: int,
    dh_mat: int,
    dc: int,
    h_prev: int,
    h: int,
    c_prev: int,
    c: int,
    gates_t: int,
    lengths: int,
    t: int,
    gx_t: int,
    gh_t: int,
    N: int,
    H: int,
    stream: int,
) -> None: ...
def conv2d_forward(
    dtype: str, x: int, w: int, b: int, y: int, act: int, dims: list[int], stream: int
) -> None: ...
def conv2d_grad_x(dtype: str, g: int, w: int, gx: int, dims: list[int], stream: int) -> None: ...
def conv2d_grad_w(dtype: str, g: int, x: int, gw: int, dims: list[int], stream: int) -> None: ...
def max_pool2d_forward(
    dtype: str, x: int, out: int, idx: int, dims: list[int], stream: int
) -> None: ...
def max_pool2d_backward(
    dtype: str, g: int, idx: int, gx: int, bad: int, dims: list[int], stream: int
) -> None: ...
def count_out_of_range(idx: int, n: int, bound: int, bad: int, stream: int) -> None: ...
