"""Failures of the parts of the stack that an operator must act on (their messages say what to do)."""


class StackError(RuntimeError):
    """A part of the stack (broker, ClickHouse, Redis, the service) cannot be used; the message says
    what to do about it, and the command line prints it without a traceback."""
