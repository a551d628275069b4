"""Deployment artefacts; a package only so tests can import deploy.grafana's helpers."""
