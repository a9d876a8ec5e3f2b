"""CrossGuard entry point. Only builds the PolicyPack: constructing it starts the analyzer's gRPC server
and blocks, so nothing may import this file (tests load ``pack.py`` instead)."""

from pulumi_policy import PolicyPack

from pack import PACK_NAME, POLICIES, fleet_initial_config

PolicyPack(name=PACK_NAME, policies=POLICIES, initial_config=fleet_initial_config())
