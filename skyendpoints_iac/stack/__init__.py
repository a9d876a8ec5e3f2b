"""The Pulumi layer: ComponentResources (Endpoint, ClusterSlice, ClusterPlatform, GlobalGateway) and the program."""
