"""Cluster access: kubeconfig loading, API clients and live reads (capacity, health).

The imperative side of talking to a cluster, between the pure layers (spec, placement, blueprint) and the
shells (stack, automation, cli). It may read the environment, the disk and the network; the pure layers it
feeds (``placement.discovery.summarise``) get plain data.
"""
