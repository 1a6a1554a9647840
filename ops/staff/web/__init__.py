"""The staff web app (issue 16): server-rendered pages on the service's own port; templates and CSS ship
in the package (ops/staff/web/templates, ops/staff/web/static), no script is needed for any task."""
