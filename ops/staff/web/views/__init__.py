"""Pure builders of the pages' data: figures in, what a template shows out (unit-tested, no I/O)."""
