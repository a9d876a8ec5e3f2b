"""skyendpoints-iac: one endpoint YAML, served across a fleet of Kubernetes clusters.

The package is layered so data flows one way:

    spec (+ fleet snapshot) -> placement -> blueprint -> stack (Pulumi) -> automation / cli

``spec``, ``placement``, ``blueprint`` and ``policy`` are pure and never import pulumi.
"""

__version__ = "0.1.0"
