"""Policy rules: one pure rule core, run by the CrossGuard pack in ``policies/`` and by ``sky policy check``."""
