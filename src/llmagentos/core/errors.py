"""The one exception type that means "the user asked for something invalid"."""


class UsageError(ValueError):
    """Bad input from a person or a spec: the command line prints the message and exits with status 2.

    The message is one sentence that names what is wrong and what is allowed.
    """
