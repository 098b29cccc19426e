"""rnngen's benchmark suite: the fused ops against the loops people would otherwise run.

    python -m rnngen.bench --quick            # seconds: does everything run and agree here?
    python -m rnngen.bench --json cpu.json --plot cpu.png --markdown
    python -m rnngen.bench --device cuda      # on a GPU: + CUDA graphs, cuDNN, FlashRNN

``workloads`` holds the jobs and their baselines, ``timing`` the side-by-side measurement,
``report`` the tables and chart, ``run`` the command line (:func:`main` takes the arguments
after ``rnngen bench``). The pytest-benchmark suite in the repository's ``bench/`` uses the
same workloads.
"""

from .run import main

__all__ = ["main"]
