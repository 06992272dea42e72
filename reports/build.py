"""Build a report directory from a run directory or from any tidy results CSV.

Outputs in REPORT_DIR: index.html (self-contained: inline CSS and SVG, no external
requests), summary.md, tables.tex (booktabs), results.csv (tidy, columns documented in
README.md), results_all_learning_rates.csv (run reports only) and stats.json.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import jinja2
import pandas as pd
from tabulate import tabulate

from reports.analysis import analyze
from reports.results import load_results
from reports.sections import ReportContext, render_all

log = logging.getLogger(__name__)

TIDY_COLUMNS = ["scenario", "initializer", "learning_rate", "seed", "metric", "value"]

COLUMNS_DOC = """# Files of this report

## results.csv

One row per scenario × initializer × seed × metric (tidy format), at each initializer's
selected learning rate.

| column | type | meaning |
| --- | --- | --- |
| scenario | text | scenario instance, e.g. `mnist1d-subset`; `@n<size>` marks a D2 training size other than the default |
| initializer | text | registry name, e.g. `copy-exact` (`python -m bench list`) |
| learning_rate | float | D2 learning rate of the row: the initializer's best mean validation accuracy over the grid |
| seed | int | seed index; the same index shares teacher, data order and noise across initializers (paired) |
| metric | text | namespaced metric name (below) |
| value | float | the number; empty when undefined (a diverged seed's accuracy, a censored quantity's missing part) |

Metric families: `test/*`, `val/*`, `train/*` (final values at the end of the budget;
`train/loss@10%` and `@25%` at that share of the budget), `test/accuracy_auc` (area under the
test-accuracy curve against the budget fraction, in [0, 1]), `convergence/steps_to_threshold`
with `convergence/reached_threshold` (1 reached, 0 censored at the budget), `init/*`
(diagnostics of the initialized student before D2 training), `compute/init_*` (what the
initializer spent before D2 training, per seed; seconds for the whole chunk),
`status/diverged` (1 when the loss turned non-finite; that seed's other numbers are empty)
and `status/diverged_step`. Other families (robustness, sharpness, ...) follow the same
naming.

## results_all_learning_rates.csv

The same columns for every learning rate of the grid (no convergence rows).

## stats.json

Every comparison of every initializer against the reference: test, statistic, p-value,
adjusted p-value and its family, effect sizes with CIs, or the reason it was not testable.
docs/statistics.md in the source repository documents the schema.
"""


def build_report(run_dir: Path, reference: str | None = None) -> Path:
    """Rebuild RUN_DIR/report from the run's stored results; return the report directory."""
    from bench.store import RunStore

    run_dir = Path(run_dir)
    config = RunStore(run_dir).load_config()
    reference = reference or config.reference
    results = load_results(run_dir, reference)
    _check_reference(reference, results.tidy)

    analysis = _analyze(results.tidy, reference)
    ctx = ReportContext(run_dir, config, results, results.tidy, analysis, reference)
    report_dir = run_dir / "report"
    write_report(ctx, report_dir, methods_paragraphs(ctx))
    results.metrics.sort_values(TIDY_COLUMNS[:-1]).to_csv(
        report_dir / "results_all_learning_rates.csv", index=False, columns=TIDY_COLUMNS)
    return report_dir


def build_report_from_csv(tidy: pd.DataFrame, out_dir: Path, *, reference: str = "uniform",
                          paired: bool | None = None) -> Path:
    """Write the statistics and report of any tidy results table to `out_dir`."""
    _check_reference(reference, tidy)
    analysis = _analyze(tidy, reference, paired=paired)
    ctx = ReportContext(None, None, None, tidy, analysis, reference)
    paragraphs = [f"Results read from a tidy CSV: {tidy.scenario.nunique()} scenario(s), "
                  f"{tidy.initializer.nunique()} initializer(s), {tidy.seed.nunique()} seed "
                  f"index(es), {tidy.metric.nunique()} metric(s).", analysis.methods_text()]
    write_report(ctx, Path(out_dir), paragraphs)
    return Path(out_dir)


def _check_reference(reference: str, tidy: pd.DataFrame) -> None:
    from bench.errors import unknown_name_error

    names = sorted(tidy.initializer.unique())
    if reference not in names:
        raise unknown_name_error("reference initializer (not in these results)", reference,
                                 names)


def _analyze(tidy: pd.DataFrame, reference: str, paired: bool | None = True):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analysis = analyze(tidy, reference=reference, paired=paired)
    for warning in caught:
        log.warning("%s", warning.message)
    return analysis


def write_report(ctx: ReportContext, report_dir: Path, methods: list[str]) -> None:
    """Render every section and write all report files."""
    # The numbers first, so that a failure while drawing loses nothing computed.
    report_dir.mkdir(parents=True, exist_ok=True)
    columns = [c for c in TIDY_COLUMNS if c in ctx.tidy.columns]
    ctx.tidy.to_csv(report_dir / "results.csv", index=False, columns=columns)
    (report_dir / "stats.json").write_text(json.dumps(ctx.analysis.to_dict(), indent=1,
                                                      allow_nan=False))
    (report_dir / "README.md").write_text(COLUMNS_DOC)
    sections = render_all(ctx)

    title = "Initializing a large student from a small teacher: benchmark report"
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"), autoescape=True)
    html = environment.get_template("report.html.j2").render(
        title=title, methods=methods, sections=sections, warnings=ctx.analysis.warnings)
    (report_dir / "index.html").write_text(html)

    markdown = [f"# {title}", "## Methods", *methods]
    for section in sections:
        if section.markdown:
            markdown += [f"## {section.title}", section.markdown]
    (report_dir / "summary.md").write_text("\n\n".join(markdown) + "\n")
    (report_dir / "tables.tex").write_text(latex_tables(ctx))
    log.info("wrote report to %s", report_dir)


def latex_tables(ctx: ReportContext) -> str:
    """Return booktabs tables of the headline metrics per scenario (mean ± std, paired p)."""
    from reports.sections._common import comparison, find_test, initializers, summary
    from reports.sections.headline import HEADLINE_METRICS

    blocks = []
    for scenario in sorted(ctx.tidy.scenario.unique()):
        rows = []
        for name in initializers(ctx.tidy, scenario, ctx.reference):
            row = [name]
            for metric in HEADLINE_METRICS:
                arm = summary(ctx.analysis, scenario, metric, name)
                mean = arm.mean.value if arm and arm.mean.value is not None else None
                std = arm.std if arm else None
                row.append("n/a" if mean is None else f"{mean:.3f} ± {std or 0:.3f}")
                test = find_test(comparison(ctx.analysis, scenario, metric, name).tests,
                                 "wilcoxon") if name != ctx.reference and comparison(
                    ctx.analysis, scenario, metric, name) else None
                row.append("--" if test is None or test.p_adjusted is None
                           else f"{test.p_adjusted:.3g}")
            rows.append(row)
        headers = ["initializer"] + [h for m in HEADLINE_METRICS for h in (m, "p")]
        body = tabulate(rows, headers=headers, tablefmt="latex_booktabs", disable_numparse=True)
        blocks.append(f"% {scenario}: mean ± std over seeds; p = paired Wilcoxon vs "
                      f"{ctx.reference}, Holm-adjusted\n{body}")
    return "\n\n".join(blocks) + "\n"


def methods_paragraphs(ctx: ReportContext) -> list[str]:
    """Generate the methods section of a run report from its configuration and results."""
    from bench.datasets import get_scenario

    config, results = ctx.config, ctx.results
    data = []
    for name in config.scenarios:
        spec = get_scenario(name)
        teacher = results.teachers[(results.teachers.scenario == name)
                                   & (results.teachers.metric == "teacher/test_accuracy")]
        accuracy = (f"; teachers reached D1 test accuracy {teacher.value.mean():.3f} "
                    f"(sd {teacher.value.std():.3f})" if len(teacher) > 1 else "")
        sizes = ", ".join(str(s) for s in config.sizes_for(name))
        data.append(f"{name} ({spec.description}; teacher MLP {'-'.join(map(str, spec.teacher_sizes))},"
                    f" student MLP {'-'.join(map(str, spec.student_sizes))}; D2 training sizes "
                    f"{sizes}, 20% of each held out for validation{accuracy})")
    s, t = config.student, config.teacher
    design = (
        f"Scenarios: {'; '.join(data)}. Each of {config.num_seeds} seeds has its own teacher, "
        f"trained on D1 with {t.optimizer} (learning rate {t.learning_rate:g}, {t.num_steps} steps, "
        f"batch {t.batch_size}); seed i fixes the teacher, the student's random parts, the data "
        f"order and every evaluation noise draw, and is shared by all initializers, so "
        f"comparisons are paired. Students were trained on D2 with {s.optimizer} for "
        f"{s.num_steps} steps of batch {s.batch_size}, evaluated every {s.eval_every} steps, at "
        f"each learning rate of {{{', '.join(f'{lr:g}' for lr in config.learning_rates)}}}; each "
        f"initializer is reported at the rate with its best mean final validation accuracy. "
        f"Initializers: {', '.join(config.initializers)}. A seed whose loss became non-finite "
        f"was frozen and counted as diverged."
    )
    paragraphs = [design, ctx.analysis.methods_text()]
    missing = _unfinished_cells(config, results)
    if missing:
        paragraphs.insert(0, f"Partial results: {len(missing)} planned cell(s) have not finished "
                             f"({'; '.join(missing[:6])}{' …' if len(missing) > 6 else ''}). "
                             f"Continue with `python -m bench run --resume --out RUN_DIR` and the "
                             f"same options.")
    return paragraphs


def _unfinished_cells(config, results) -> list[str]:
    """Return the planned cells missing from the results database, as readable labels."""
    from bench.runner import plan

    finished = {(r.scenario, r.initializer, float(r.learning_rate), int(r.chunk))
                for r in results.cells.itertuples()}
    return [str(cell.key) for cell in plan(config)
            if (cell.key.scenario, cell.key.initializer, cell.key.learning_rate,
                cell.key.chunk) not in finished]
