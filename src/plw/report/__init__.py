"""Figures and reports of a PLW study: `build.build_report` writes report.html, report.md and figures."""
