"""Figures and tables for notebooks, over what `cxr generate` and `cxr evaluate` write.

- rows: predictions and references as rows, whatever a notebook holds (a `Prediction`, a
  reports.jsonl row, a `Study`).
- study_views: one study's images beside its generated and reference report; prior against
  current.
- head_calls: the tube/line, findings and change heads' calls as tables and bars, beside
  what the generated report states.
- evaluation_results: the metrics of an evaluation, its ROC (tube/line, findings head),
  change confusion and F1 figures, and per-study scores; these call cxr.evaluation's own functions, so a notebook shows exactly
  what `cxr evaluate` computes.
"""
