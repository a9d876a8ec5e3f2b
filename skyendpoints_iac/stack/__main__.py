"""``pulumi up`` entry point (``main:`` in Pulumi.yaml): the whole program is ``program_from_config``."""

from skyendpoints_iac.stack.program import program_from_config

program_from_config()
