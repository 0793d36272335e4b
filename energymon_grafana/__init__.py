"""Grafana as code: every dashboard of `grafana/dashboards/` generated from Python with
grafana-foundation-sdk, the alert rules and notifications as provisioning files, and the
`energymon grafana` commands (`build`, `push`). An application: it imports only
the kernel."""

# The default of ENERGYMON_CURRENCY: the unit of the cost panels in the committed dashboards.
DEFAULT_CURRENCY = "IDR"
