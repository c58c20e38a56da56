"""Factorial studies: `plw sweep` over PLW x model x dataset x seed x regulariser.

    from plw.experiment import load_study, run_sweep
    states = run_sweep(load_study(Path("configs/studies/tiny.yaml")))

Modules: `study` (the study file), `cells` (grid and cell ids), `validate` (one pass over the
expanded cells), `plan` (validated cells and their states, fingerprints), `driver` (resumable runs),
`executor_local` / `executor_ray`, `worker` and `runner` (one cell), `mechanisms` (weight distance,
loss RSD, validation loss, memorisation), `store` (results.sqlite), `status`, `estimate`,
`progress`. See docs/sweeps.md.
"""

from plw.lazy import lazy_exports

_LAZY = {
    "Study": "plw.experiment.study",
    "load_study": "plw.experiment.study",
    "Cell": "plw.experiment.cells",
    "expand": "plw.experiment.cells",
    "check_study": "plw.experiment.validate",
    "make_plan": "plw.experiment.plan",
    "run_sweep": "plw.experiment.driver",
    "ResultStore": "plw.experiment.store",
    "study_status": "plw.experiment.status",
}

__all__ = list(_LAZY)

# Lazy so that importing the package (or one light module of it) pulls in no heavy dependency.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
