"""CrossGuard entry point. Only builds the PolicyPack: constructing it starts the analyzer's gRPC server
and blocks, so nothing may import this file (tests load ``pack.py`` instead)."""

from pack import PACK_NAME, POLICIES, fleet_initial_config, skip_uninspected
from pulumi_policy import PolicyPack
from pulumi_policy.policy import _PolicyAnalyzerServicer

skip_uninspected(_PolicyAnalyzerServicer)
PolicyPack(name=PACK_NAME, policies=POLICIES, initial_config=fleet_initial_config())
