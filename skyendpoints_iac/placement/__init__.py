"""Placement: how many replicas of an endpoint each cluster runs.

Pure and deterministic (filter -> rank -> assign), explainable through reasons. Never imports pulumi.
"""
