"""The Pulumi layer: ComponentResources (Endpoint, ClusterSlice, ClusterPlatform, GlobalGateway) and the program.

Module names avoid the standard library's (``cluster_platform``, ``secret_values``): Pulumi runs
``__main__.py`` from this directory, and a ``platform.py`` here could shadow ``import platform``.
Entry points: ``program.deploy(DeploymentInputs)`` (Automation API) and ``program.program_from_config()``
(``pulumi up``); see docs/pulumi.md.
"""
