"""Automation API shell: ``sky endpoint up/down/status/reconcile`` around the same program as ``pulumi up``."""
