"""Deployment artefacts: the Kubernetes manifests render and keep their invariants."""
