"""A Kubernetes-compatible HTTP API for the hub, so stock kubectl (and any
Kubernetes client) drives Fleet UI: discovery, OpenAPI v3, resources with
Table output, Status errors, bearer tokens (docs/kube-api.md)."""
