"""Grafana for energymon as code: alert rules, notifications and `energymon grafana push`."""
