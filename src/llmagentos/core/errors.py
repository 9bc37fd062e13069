"""The one exception type that means "the user asked for something invalid"."""

from __future__ import annotations

import contextlib
from typing import Iterator


class UsageError(ValueError):
    """Bad input from a person or a spec: the command line prints the message and exits with status 2.

    The message is one sentence that names what is wrong and what is allowed.
    """


@contextlib.contextmanager
def arguments_refused_as_usage(what: str) -> Iterator[None]:
    """Inside: an error a constructor raises on the arguments it was given becomes one UsageError sentence.

    Worlds (``gymnasium.make(id, **env_args)``) reject bad keyword values with ValueError, KeyError,
    IndexError or AssertionError; those are the person's bad input, not a bug, so they exit 2.
    """
    try:
        yield
    except UsageError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AssertionError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"{what} refused its arguments ({type(err).__name__}: {detail[:200]})") from None
