"""The edge, where events enter: the HTTP collector (generic, Caliper, Canvas, xAPI) and `lde ingest`
from files, each publishing canonical envelopes to the activity topic."""
