"""The built-in groupware backend: contacts, calendars, tasks and notes stored
as vCard / iCalendar text in the state database, with a per-collection history
table that answers "what changed since revision R" without comparing item
lists.

- :mod:`easyncd.backends.groupware.items`: pure helpers shared with the memory
  fake (item checks, UID scan, net changes from history rows).
- :mod:`easyncd.backends.groupware.statements`, :mod:`.programs`: the SQL text
  and the transactions, run by the state store's engines.
- :mod:`easyncd.backends.groupware.sql`: :class:`SQLGroupwareBackend`.
- :mod:`easyncd.backends.groupware.vobj`: the only place that imports vobject.
"""
