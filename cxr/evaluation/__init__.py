"""Evaluation of generated reports, one module per concern.

- records: reading prediction/reference files into tables; what a missing cell is.
- studies: matching studies on study_id; each side's per-study text, tube/line, status,
  change and findings-head observation arrays (`StudyTable`); the compared text
  (`section_text`).
- metric_keys: every metric's name, and the per-subject groupings plots and notebooks use.
- metric families: nlg (BLEU, METEOR, ROUGE-L, CIDEr), clinical_efficacy (labeler F1),
  report_head_consistency (the report's statements against the findings head's calls),
  tube_line_metrics (AUC, device status), findings_metrics (findings-head AUC),
  change_metrics (MS-CXR-T macro accuracy, accuracy and F1), scorers (model-based scorers'
  interface); labeler and classification are their building blocks.
- bootstrap: patient-level resampling and intervals; baselines: trivial report baselines.
- evaluate: the orchestrator (`evaluate_files`, `evaluate_systems`, `SystemMetrics`).
- outputs: the table, metrics.json and the other files written (and read back); plots: figures.
- commands: the `cxr evaluate` command.
"""
