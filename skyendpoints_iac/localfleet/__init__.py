"""A real local fleet: Kubernetes control planes with kwok GPU nodes, built from Go modules."""
