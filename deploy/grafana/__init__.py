"""Grafana dashboards for kefu-pulse: built by build.py, committed as JSON under dashboards/."""
