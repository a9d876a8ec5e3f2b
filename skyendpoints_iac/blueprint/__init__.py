"""Blueprint: spec + placement -> per-cluster Kubernetes objects and chart releases, plus global resources.

Pure data; rendered by ``sky endpoint render``, checked by policies, deployed by ``stack``. Never imports pulumi.
"""
