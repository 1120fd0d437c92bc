"""The Sync command's machinery (MS-ASCMD 2.2.1.21) for groupware collections.

* :mod:`.constants` -- Sync status codes, limits, namespaces;
* :mod:`.request`   -- the request model, parsed from WBXML (and cached for
  the empty-request shorthand and partial Sync);
* :mod:`.state`     -- what is saved under each collection's SyncKey;
* :mod:`.changes`   -- pure merging of pending and new changes;
* :mod:`.engine`    -- one collection's sync: client commands, server changes,
  windows, the new key; and the item estimate GetItemEstimate shares;
* :mod:`.render`    -- the response elements, in schema order;
* :mod:`.marks`     -- writes a device made outside Sync (MoveItems,
  EmptyFolderContents), marked so its next Sync does not echo them.

The command itself is :mod:`easyncd.protocol.commands.sync`.
"""
