"""What runs LDE and what people use: the CLI, the service runtime, HTTP, jobs, reports, the embedded
stack and (in ops.devtools) the development tools.

Every entry point (`lde`, `python -m ops.…`) imports this package before numpy, so the process-wide
setting below applies to the service, the jobs and the benchmarks alike.
"""

import os

# numpy asks the kernel for transparent huge pages on every large array (madvise). Where the kernel
# compacts memory for them synchronously (defrag "madvise", the common default), first touching the
# fresh arrays of a million-student sweep stalls in the kernel: 0.8-1.2 s more system time on a
# first day here, 10.1-12.5 s against 9.2-9.6 s with it off (BENCHMARKS.md). An operator whose
# hosts gain from huge pages sets NUMPY_MADVISE_HUGEPAGE=1; an explicit setting is kept.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
