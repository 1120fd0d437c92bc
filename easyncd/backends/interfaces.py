"""Contracts between the protocol layer and the backends, with their errors.

A backend that checks passwords provides :class:`IAuthenticator`.  Its answer
has three outcomes: ``True`` (the password is right), ``False`` (it is wrong
or the user is unknown) and a failure with :class:`AuthBackendUnavailable`
(the backend could not be asked: connection refused, TLS verification failed,
timeout).  The HTTP layer answers 401 for the second and 503 for the third.
"""
from __future__ import annotations

from zope.interface import Interface


class AuthBackendUnavailable(Exception):
    """A password backend could not give an answer (not: the password is wrong).

    The message never contains the password.
    """


class IAuthenticator(Interface):
    """Something that can check a user name and password."""

    def authenticate(username, password):  # type: ignore[misc,no-untyped-def]
        """Deferred[bool]: check ``password`` for the account ``username``.

        Fires with ``True`` or ``False``; fails with
        :class:`AuthBackendUnavailable` when no answer could be had.
        """
