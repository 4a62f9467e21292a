"""CI, no GPU: the nvcc build of recfast._cuda has no register spills in its kernels, the module
imports, backends() gives the no-device reason, and NVRTC compiles every cupy-fallback kernel."""

import re
import sys
import time

log = open(sys.argv[1]).read()
spills = []
for fn, body in re.findall(r"Function properties for (\S+)\n(.*?)\n", log):
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", body)
    if m and (int(m.group(1)) or int(m.group(2))):
        spills.append(f"{fn}: {body.strip()}")
n_fn = len(re.findall(r"Function properties for", log))
assert n_fn > 0, "no ptxas -v report in the build log"
if spills:
    sys.exit("register spills in the CUDA kernels:\n" + "\n".join(spills))
print(f"ptxas: {n_fn} kernel variants, no spills")

import recfast._cuda as cuda  # noqa: E402

import recfast  # noqa: E402

info = {b.name: b for b in recfast.backends()}["cuda"]
if cuda.device_count() == 0:
    assert not info.available and info.reason.startswith("no CUDA device"), info
print(f"recfast._cuda {cuda.__version__} (CUDA runtime {cuda.runtime_version()}): {info.reason!r}")

from recfast._backends.cupy import _sources  # noqa: E402

for name, exprs in _sources.every_instantiation().items():
    t = time.perf_counter()
    size, _ = _sources.nvrtc_compile(name, exprs, arch="sm_90")
    print(
        f"NVRTC {name}.cuh: {len(exprs)} kernels, cubin {size} bytes, {time.perf_counter() - t:.1f} s"
    )
