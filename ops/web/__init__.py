"""The staff web app (issue 16): server-rendered pages on the service's own port; templates and CSS ship
in the package (ops/web/templates, ops/web/static), no script is needed for any task."""
