"""The hub's Kubernetes-compatible HTTP API (issue 20)."""
