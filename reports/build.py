def build_report(run_dir, reference=None):
    from pathlib import Path
    return Path(run_dir) / "report"
