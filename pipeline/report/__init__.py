"""`ddsweep report`: turn a sweep's run directories into the double-descent figures of the
literature, an HTML page (``index.html``) and optionally a summary W&B run.

    collect   run directories and state.json → Run records (no drawing)
    analysis  layout (x axis, curves), mean ± std over seeds, threshold, peak, Pearson r, heat map
    figures   matplotlib figures;  page  the HTML;  tables  run and curve tables
    wandb_summary  the W&B summary run and ``wandb_mode()``
"""
from ddsweep.pipeline.report.cli import build_report, main

__all__ = ["build_report", "main"]
