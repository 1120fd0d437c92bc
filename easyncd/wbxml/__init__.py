"""A pure WBXML codec for Exchange ActiveSync (MS-ASWBXML, EAS 2.5-16.1).

No I/O and no imports from the rest of easyncd::

    root = decode(body)                      # bytes -> Element
    key = root.findtext("FolderHierarchy:SyncKey")
    reply = Element("FolderHierarchy:FolderSync")
    reply.add("FolderHierarchy:Status", "1")
    body = encode(reply)                     # Element -> bytes
"""

from .decoder import MAX_DEPTH, decode
from .element import Element, WBXMLError
from .encoder import HEADER, encode

__all__ = ["Element", "WBXMLError", "decode", "encode", "HEADER", "MAX_DEPTH"]
