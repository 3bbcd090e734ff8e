"""Errors a user can cause; front ends print them as one line, never a traceback."""


class R1ChatError(Exception):
    """A failure with a message fit to show the user as `error: <message>` (exit code 1)."""

    exit_code = 1


class UsageError(R1ChatError):
    """The command line or its input was wrong (exit code 2)."""

    exit_code = 2


class UnknownModel(R1ChatError):
    """No catalog entry, installed model or Hub repository has that name."""


class PromptTooLong(R1ChatError):
    """The prompt leaves the reply no room in the context (the API answers 400)."""


class PromptCancelled(R1ChatError):
    """Reading the prompt stopped: whoever asked for it is gone."""


class BadSchema(R1ChatError):
    """A JSON schema for the answer that cannot be turned into a grammar."""
