"""The GPU kernel sources both device backends run, and the template instantiations each needs.

The ``cuda`` extension compiles ``recfast/_kernels/*.cuh`` with nvcc (``csrc/cuda/*.cu`` include
them); the ``cupy`` backend compiles the same files at run time with NVRTC (``cupy.RawModule``),
and CI compiles every instantiation listed here with NVRTC on a machine without a GPU
(:func:`nvrtc_compile`), so the two backends cannot drift apart and a template error in the
fallback fails CI. This module imports neither CuPy nor the CUDA runtime.
"""

from __future__ import annotations

import ctypes
import glob
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]  # .../recfast
KERNELS = PACKAGE / "_kernels"

# C++ spellings of the dtypes, as the NVRTC build of recfast/common.hpp defines them.
FLOAT_T = {"float32": "float", "float64": "double"}
INDEX_T = {"int32": "int", "int64": "long long"}
ACCESS = ("false", "true")  # the kernels' VEC argument: 16-byte row accesses or scalar ones
KPL_CHOICES = (1, 2, 4)  # coordinates per lane when k = 32, 64, 128; 0 = any k


def include_dirs() -> list[Path]:
    """``_kernels`` and the folder holding ``recfast/*.hpp``: the copy a wheel ships
    (``_kernels/include``) or, in an editable install, the checkout's ``csrc/include``."""
    shipped = KERNELS / "include"
    source = PACKAGE.parent / "csrc" / "include"
    return [KERNELS, shipped if (shipped / "recfast").is_dir() else source]


def options() -> tuple[str, ...]:
    # No fast-math: the kernels must compute what the CPU kernels compute (IEEE division, sqrt).
    return ("-std=c++17", *(f"-I{d}" for d in include_dirs()))


def source(name: str) -> str:
    """The translation unit for kernel file ``name`` (``"mf"``, ``"dense"``)."""
    return f'#include "{name}.cuh"\n'


def kpl_for(k: int) -> int:
    """Coordinates per lane of the SGD kernels: k / 32 for k in 32, 64, 128; 0 (the strided loop)
    otherwise."""
    return k // 32 if k in (32, 64, 128) else 0


def mf_names(dtype: str, index: str, kpl: int, vec: bool) -> dict[str, str]:
    """The SGD-MF kernels for one (factor dtype, index dtype, coordinates per lane, vector
    access); "float16" factors are storage for float32 arithmetic (scalar row accesses)."""
    i, v = INDEX_T[index], ACCESS[vec]
    if dtype == "float16":
        targs = f"float, {i}, {kpl}, false, recfast::Half"
    else:
        targs = f"{FLOAT_T[dtype]}, {i}, {kpl}, {v}"
    return {
        "hogwild": f"recfast::gpu::sgd_mf_hogwild<{targs}>",
        "stratum": f"recfast::gpu::sgd_mf_stratum<{targs}>",
        "count_index": f"recfast::gpu::count_out_of_range<{i}>",
        "count_order": "recfast::gpu::count_out_of_range<long long>",
        "sum": "recfast::gpu::sum_in_order",
    }


def dense_names(dtype: str) -> dict[str, str]:
    t = FLOAT_T[dtype]
    return {
        "bias_activation": f"recfast::gpu::bias_activation<{t}>",
        "activation_backward": f"recfast::gpu::activation_backward<{t}>",
    }


def rnn_names(dtype: str) -> dict[str, str]:
    t = FLOAT_T[dtype]
    return {
        "step": f"recfast::gpu::rnn_step_forward<{t}>",
        "step_backward": f"recfast::gpu::rnn_step_backward<{t}>",
    }


def conv2d_names(dtype: str) -> dict[str, str]:
    t = FLOAT_T[dtype]
    return {
        "forward": f"recfast::gpu::conv2d_forward<{t}>",
        "grad_x": f"recfast::gpu::conv2d_grad_x<{t}>",
        "grad_w": f"recfast::gpu::conv2d_grad_w<{t}>",
        "pool": f"recfast::gpu::max_pool2d_forward<{t}>",
        "pool_backward": f"recfast::gpu::max_pool2d_backward<{t}>",
        "count": "recfast::gpu::count_out_of_range<long long>",
    }


def every_instantiation() -> dict[str, list[str]]:
    """Kernel file -> every name expression a backend may ask for (what CI compiles)."""
    mf: set[str] = set()
    for dt in (*FLOAT_T, "float16"):
        for ix in INDEX_T:
            for kpl in (*KPL_CHOICES, 0):
                for vec in (False, True):
                    if vec and kpl == 0:
                        continue  # the strided loop has no vector form
                    mf.update(mf_names(dt, ix, kpl, vec).values())
    dense = {n for dt in FLOAT_T for n in dense_names(dt).values()}
    rnn = {n for dt in FLOAT_T for n in rnn_names(dt).values()}
    conv = {n for dt in FLOAT_T for n in conv2d_names(dt).values()}
    return {"mf": sorted(mf), "dense": sorted(dense), "rnn": sorted(rnn), "conv2d": sorted(conv)}


# --- NVRTC without a GPU (CI): the PyPI wheel nvidia-cuda-nvrtc or a CUDA toolkit's libnvrtc ----
def _find_nvrtc() -> str:
    found = []
    try:
        import nvidia  # namespace package of the nvidia-* wheels

        for root in nvidia.__path__:
            found += glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*"))
    except ImportError:
        pass
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    found += glob.glob(os.path.join(cuda, "lib64", "libnvrtc.so*"))
    found = [f for f in found if "builtins" not in f]
    if not found:
        raise OSError("libnvrtc not found: pip install nvidia-cuda-nvrtc, or set CUDA_HOME")
    return sorted(found)[0]


def nvrtc_compile(name: str, names: list[str], arch: str = "sm_90") -> tuple[int, str]:
    """Compile kernel file ``name`` with the given instantiations to a cubin for ``arch`` (no
    device needed). Returns (cubin size in bytes, log); raises RuntimeError with NVRTC's log on
    a compile error or when a name expression does not resolve."""
    lib = ctypes.CDLL(_find_nvrtc())
    prog = ctypes.c_void_p()
    src = source(name).encode()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), src, f"{name}.cu".encode(), 0, None, None)
    if rc:
        raise RuntimeError(f"nvrtcCreateProgram({name}) failed: {rc}")
    try:
        for n in names:
            if lib.nvrtcAddNameExpression(prog, n.encode()):
                raise RuntimeError(f"nvrtcAddNameExpression({n}) failed")
        opts = [*options(), f"-arch={arch}"]
        argv = (ctypes.c_char_p * len(opts))(*(o.encode() for o in opts))
        rc = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        text = log.value.decode(errors="replace")
        if rc:
            raise RuntimeError(f"NVRTC failed to compile {name}.cuh:\n{text}")
        for n in names:
            lowered = ctypes.c_char_p()
            if lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(lowered)):
                raise RuntimeError(f"{n} did not resolve in {name}.cuh")
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        return int(size.value), text
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
