"""Evaluation of generated reports: NLG metrics, clinical efficacy, tube/line, change, bootstrap."""
