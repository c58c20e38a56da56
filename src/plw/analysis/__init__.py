"""Statistics of a PLW study: the beta GLMM of score on PLW, the critical PLW, aggregates, mechanisms.

Entry points: `results.load_results` (read a results table), `summary.analyze_results` /
`summary.analyze_study` (the whole analysis as a JSON-ready dict). See docs/analysis.md.
"""

from plw.lazy import lazy_exports

_LAZY = {
    "load_results": "plw.analysis.results",
    "analyze_results": "plw.analysis.summary",
    "analyze_study": "plw.analysis.summary",
    "PRIMARY_METRICS": "plw.analysis.scores",
}

__all__ = list(_LAZY)

# Lazy so that `import plw.analysis.results` does not pull in statsmodels.
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
