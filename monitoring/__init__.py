"""Monitoring: the product's Prometheus metrics (one module, one prefix) and, later, rules and dashboards."""
