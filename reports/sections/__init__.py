"""Report sections: each module renders one part of the report from a `ReportContext`.

A section module defines `render(ctx: ReportContext) -> Section | None` (None when the run
has nothing for it). `SECTION_MODULES` fixes their order in index.html and summary.md.
"""

from __future__ import annotations

import html
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from bench.config import RunConfig

log = logging.getLogger(__name__)

SECTION_MODULES = [
    "headline",
    "quality",
    "convergence",
    "variance",
    "prediction_variance",
    "robustness",
    "ablation",
    "diagnostics",
    "ranking",
    "appendix",
]
"""Module names under reports.sections, in report order."""


@dataclass
class Section:
    """One rendered part of the report."""

    anchor: str
    """HTML id, e.g. "robustness"."""
    title: str
    html: str
    """HTML fragment; figures are inline <svg>, nothing refers to an external resource."""
    markdown: str = ""
    """The same content for summary.md; empty to leave the section out of it."""


@dataclass
class ReportContext:
    """The inputs every section reads: run, configuration, results and their statistics."""

    run_dir: Path | None
    """None when the report comes from a results CSV alone (`bench analyze`)."""
    config: RunConfig | None
    results: "object"
    """reports.results.RunResults (None for `bench analyze`, which has only `tidy`)."""
    tidy: "object"
    """pandas DataFrame: scenario, initializer, [learning_rate,] seed, metric, value."""
    analysis: "object"
    """reports.analysis.Analysis of `tidy`."""
    reference: str


def render_all(ctx: ReportContext) -> list[Section]:
    """Render every section module in order, skipping those with nothing to show."""
    sections = []
    for name in SECTION_MODULES:
        module = importlib.import_module(f"reports.sections.{name}")
        try:
            section = module.render(ctx)
        except Exception as error:  # One broken figure must not cost the rest of the report.
            log.warning("report section %s failed: %s: %s", name, type(error).__name__, error)
            section = Section(name, f"{name} (failed)",
                              f"<p class='note'>This section could not be drawn: "
                              f"{html.escape(f'{type(error).__name__}: {error}')}. "
                              f"stats.json holds its numbers.</p>",
                              f"This section could not be drawn: {type(error).__name__}: {error}")
        if section is not None:
            sections.append(section)
    return sections
