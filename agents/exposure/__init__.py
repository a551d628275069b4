"""What people and Prometheus see: metrics, the floor API and page."""
