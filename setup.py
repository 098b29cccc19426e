"""Builds rnngen's C++ extensions (the Python package itself needs no build).

    pip install --no-build-isolation -e .      (torch must be installed first)

- rnngen._cpu (csrc/cpu, csrc/common): always attempted. If it cannot be built (no compiler,
  torch missing at build time) the package still installs and runs on the pure-PyTorch
  reference backend, with one warning here.
- rnngen._cuda (csrc/cuda): built when torch has CUDA and nvcc is found.
    RNNGEN_FORCE_CUDA=1   build it or fail loudly (also builds a CPU-torch failure as an error)
    RNNGEN_SKIP_CUDA=1    never build it
    TORCH_CUDA_ARCH_LIST  architectures to compile for (default: the visible GPU's; with none
                          visible, "8.0;9.0+PTX")
    MAX_JOBS              parallel compile jobs (torch's ninja build)
"""

import glob
import os
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def warn(message: str) -> None:
    print(f"\nWARNING (rnngen): {message}\n", file=sys.stderr, flush=True)


def sources(*patterns):
    return sorted(os.path.relpath(p, ROOT) for pattern in patterns for p in glob.glob(os.path.join(ROOT, pattern)))


ext_modules, cmdclass = [], {}
try:
    import torch
    from torch.utils import cpp_extension
except ImportError:
    torch = None

if torch is None:
    if flag("RNNGEN_FORCE_CUDA"):
        raise RuntimeError("RNNGEN_FORCE_CUDA=1 but torch is not importable at build time; install torch "
                           "first and build with pip install --no-build-isolation")
    warn("torch is not importable at build time, so the C++ extensions are not built; rnngen will run "
         "on its pure-PyTorch reference backend. Install torch first, then "
         "`pip install --no-build-isolation -e .`, to build them.")
else:
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    include = [os.path.join(ROOT, "csrc")]
    ext_modules.append(cpp_extension.CppExtension(
        "rnngen._cpu", sources("csrc/cpu/*.cpp"), include_dirs=include,
        # -fno-trapping-math lets GCC vectorise the float->int step of the kernels' exp (torch
        # builds with it too); NaN still propagates.
        extra_compile_args={"cxx": ["-O3", "-fno-trapping-math", "-fno-math-errno", *openmp]},
        extra_link_args=openmp))

    force_cuda, skip_cuda = flag("RNNGEN_FORCE_CUDA"), flag("RNNGEN_SKIP_CUDA")
    have_cuda = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    if force_cuda and skip_cuda:
        raise RuntimeError("RNNGEN_FORCE_CUDA=1 and RNNGEN_SKIP_CUDA=1 contradict each other; set one")
    if force_cuda and not have_cuda:
        raise RuntimeError(
            f"RNNGEN_FORCE_CUDA=1 but the CUDA extension cannot be built: torch {torch.__version__} "
            f"has CUDA {torch.version.cuda!r} and CUDA_HOME (nvcc) is {cpp_extension.CUDA_HOME!r}. "
            "Install a CUDA build of torch and the CUDA toolkit.")
    if (have_cuda or force_cuda) and not skip_cuda:
        if not torch.cuda.is_available():  # with a GPU visible, torch compiles for it
            os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
        ext_modules.append(cpp_extension.CUDAExtension(
            "rnngen._cuda", sources("csrc/cuda/*.cu", "csrc/cuda/*.cpp"), include_dirs=include,
            extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", "-lineinfo"]}))

    class BuildExtension(cpp_extension.BuildExtension):
        """torch's BuildExtension (ninja), where only a forced extension's failure is fatal."""

        def _skip(self, ext, exc):
            if ext.name == "rnngen._cuda" and force_cuda:
                raise exc
            hint = " A C++ compiler (g++) is needed for the cpu backend." if ext.name == "rnngen._cpu" else ""
            warn(f"{ext.name} was not built ({type(exc).__name__}: {exc}). rnngen still installs and runs "
                 f"on its pure-PyTorch reference backend; rnngen.backend_status() reports why.{hint}")
            self._failed = getattr(self, "_failed", set()) | {ext.name}

        def run(self):
            # A library an earlier build left in the tree must not outlive a failed rebuild.
            for ext in self.extensions:
                for stale in glob.glob(os.path.join(ROOT, *ext.name.split(".")) + ".*.so"):
                    os.remove(stale)
            super().run()

        def build_extensions(self):
            try:  # torch checks the compiler for every extension before building any
                super().build_extensions()
            except Exception as exc:
                for ext in self.extensions:
                    if ext.name not in getattr(self, "_failed", set()):
                        self._skip(ext, exc)

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:
                self._skip(ext, exc)

        def copy_extensions_to_source(self):
            # An editable install copies every built library into the tree: skip the failed ones.
            failed = getattr(self, "_failed", set())
            kept = self.extensions
            self.extensions = [e for e in kept if e.name not in failed]
            try:
                super().copy_extensions_to_source()
            finally:
                self.extensions = kept

        def get_outputs(self):
            failed = getattr(self, "_failed", set())
            return [path for path, ext in zip(super().get_outputs(), self.extensions) if ext.name not in failed]

    cmdclass["build_ext"] = BuildExtension.with_options(use_ninja=True)

setup(ext_modules=ext_modules, cmdclass=cmdclass)
