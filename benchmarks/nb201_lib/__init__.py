"""NAS-Bench-201 search benchmark: table device, baselines, harness, summary and plot.

Kept outside the product package on purpose: nothing in nni_gensynth imports it.
"""
