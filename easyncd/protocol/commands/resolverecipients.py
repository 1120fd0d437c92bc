"""ResolveRecipients (MS-ASCMD 2.2.1.15): names and addresses -> recipients,
with free/busy, certificates and photos.

Where recipients come from:

* **Local users** (Type 1, "GAL"): the names of the users file (when the
  ``users_file`` checker is configured) and every account the state store
  knows (users who connected a device), each with its address: the account
  name if it is one, else ``account@[auth] default_domain`` (users without an
  address cannot be mail recipients and are left out).
* **The requesting user's contacts** (Type 2): every contact collection of
  the user in the groupware backend, at most :data:`CONTACT_SCAN_LIMIT`
  items, one recipient per e-mail address of a contact.  A contact whose
  address is a local user's lends its name and photo to that local entry.

Matching (a small ANR): a ``To`` holding an address (``a@b`` or ``Name
<a@b>``) matches that exact address; any other text matches an entry whose
name, nickname, account or address equals it, or else every word of which
starts a word of the entry's names or address.  One match: Status 1; more:
Status 2 (every suggestion returned, at most ``MaxAmbiguousRecipients``)
or 3 (a partial list); none: Status 4.

Options: ``CertificateRetrieval`` 2/3 -> a ``Certificates`` element with
Status 7 (easyncd stores no S/MIME certificates); ``Availability`` (14.0+)
-> ``MergedFreeBusy`` computed from every calendar of the recipient when it
is a local user (one digit per 30 minutes: 0 free, 1 tentative, 2 busy,
3 out of office), Status 163 for anyone else, 160 for every recipient when
the request has more than 100 ``To``; ``Picture`` (14.1+) -> the contact's
photo (``MaxSize`` / ``MaxPictures`` per ``To``), Status 173 without one.
Ambiguous suggestions get neither certificates nor free/busy (as the spec
says).  A malformed request gets top Status 5, a backend failure 6.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from typing import Any, Iterable, Sequence

from easyncd.backends.groupware.contact import Contact
from easyncd.backends.groupware.event import (
    STATUS_DECLINED,
    STATUS_NOT_RESPONDED,
    STATUS_TENTATIVE,
    DateOrTime,
    Event,
    same_instant_key,
)
from easyncd.backends.groupware.vobj import ICalendarError, VCardError, parse_ics, parse_vcard
from easyncd.backends.interfaces import KIND_CALENDAR, KIND_CONTACTS
from easyncd.backends.users_file import UsersFile, UsersFileError
from easyncd.protocol.codecs.recurrence import parse_eas_datetime
from easyncd.protocol.commands.base import Command
from easyncd.protocol.context import CommandContext, CommandResponse
from easyncd.protocol.versions import at_least
from easyncd.wbxml import Element

NS = "ResolveRecipients:"

# Status (ResolveRecipients), MS-ASCMD 2.2.3.177.12.
STATUS_SUCCESS = 1
STATUS_AMBIGUOUS = 2
STATUS_AMBIGUOUS_PARTIAL = 3
STATUS_UNRESOLVED = 4
STATUS_PROTOCOL_ERROR = 5
STATUS_SERVER_ERROR = 6
STATUS_NO_CERTIFICATE = 7
STATUS_CERTIFICATE_LIMIT = 8
AVAILABILITY_TOO_MANY = 160
AVAILABILITY_TRANSIENT = 162
AVAILABILITY_FAILURE = 163
PICTURE_NONE = 173
PICTURE_TOO_LARGE = 174
PICTURE_LIMIT = 175

#: Recipient Type values.
TYPE_GAL = 1
TYPE_CONTACT = 2

#: More To elements than this: protocol error (the spec leaves > 1000 undefined).
MAX_TO = 1000
#: More To elements than this with Availability: Status 160 on each.
MAX_AVAILABILITY_TO = 100
#: The longest To value (Response/To: up to 256 characters).
MAX_TO_LENGTH = 256
#: Suggestions per ambiguous To when the device sets no MaxAmbiguousRecipients.
DEFAULT_MAX_AMBIGUOUS = 20
#: MergedFreeBusy is at most 32 KB: one digit per slot.
MAX_FREEBUSY_SLOTS = 32 * 1024
SLOT = datetime.timedelta(minutes=30)
#: Bounds on what one request reads from the groupware backend.
CONTACT_SCAN_LIMIT = 5000
EVENT_SCAN_LIMIT = 10000
#: Occurrences of one series looked at per request.
OCCURRENCE_LIMIT = 5000
_BATCH = 200

_UTC = datetime.timezone.utc
_WORD = re.compile(r"[^\w]+", re.UNICODE)


class ProtocolError(ValueError):
    """The request does not follow the ResolveRecipients grammar (Status 5)."""


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PictureOptions:
    """Options/Picture: size limit (bytes) and photos per To."""

    max_size: int | None = None
    max_pictures: int | None = None


@dataclass(frozen=True)
class ResolveOptions:
    """The request's Options."""

    certificate_retrieval: int = 1
    max_certificates: int | None = None
    max_ambiguous: int | None = None
    availability: tuple[datetime.datetime, datetime.datetime] | None = None
    picture: PictureOptions | None = None


def _text(element: Element) -> str:
    value = element.text
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _integer(element: Element, low: int, high: int) -> int:
    text = _text(element).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ProtocolError(f"{element.tag} {text!r} not in {low}..{high}")
    return int(text)


def _instant(element: Element) -> datetime.datetime:
    try:
        naive, _ = parse_eas_datetime(_text(element))
    except ValueError:
        raise ProtocolError(f"{element.tag}: not a date-time") from None
    return naive.replace(tzinfo=_UTC)


def _single(parent: Element, seen: set[str], child: Element) -> None:
    if child.tag in seen:
        raise ProtocolError(f"{child.tag} twice in {parent.tag}")
    seen.add(child.tag)


def parse_request(body: Element | None, version: str) -> tuple[list[str], ResolveOptions]:
    """The To values and Options of a request; ProtocolError if malformed
    (including Availability before 14.0 and Picture before 14.1)."""
    if body is None or body.tag != NS + "ResolveRecipients":
        raise ProtocolError("not a ResolveRecipients request")
    recipients: list[str] = []
    options = ResolveOptions()
    seen_options = False
    for child in body.children:
        if child.tag == NS + "To":
            value = _text(child).strip()
            if not value or len(value) > MAX_TO_LENGTH or child.children:
                raise ProtocolError("empty or too long To")
            recipients.append(value)
        elif child.tag == NS + "Options" and not seen_options:
            seen_options = True
            options = _parse_options(child, version)
        else:
            raise ProtocolError(f"unexpected {child.tag}")
    if not recipients or len(recipients) > MAX_TO:
        raise ProtocolError(f"{len(recipients)} To elements")
    return recipients, options


def _parse_options(element: Element, version: str) -> ResolveOptions:
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for child in element.children:
        _single(element, seen, child)
        name = child.tag[len(NS):] if child.tag.startswith(NS) else ""
        if name == "CertificateRetrieval":
            values["certificate_retrieval"] = _integer(child, 1, 3)
        elif name == "MaxCertificates":
            values["max_certificates"] = _integer(child, 0, 9999)
        elif name == "MaxAmbiguousRecipients":
            values["max_ambiguous"] = _integer(child, 0, 9999)
        elif name == "Availability" and at_least(version, "14.0"):
            values["availability"] = _parse_availability(child)
        elif name == "Picture" and at_least(version, "14.1"):
            values["picture"] = _parse_picture(child)
        else:
            raise ProtocolError(f"unexpected {child.tag} in Options (version {version})")
    return ResolveOptions(**values)


def _parse_availability(element: Element) -> tuple[datetime.datetime, datetime.datetime]:
    start = end = None
    seen: set[str] = set()
    for child in element.children:
        _single(element, seen, child)
        if child.tag == NS + "StartTime":
            start = _instant(child)
        elif child.tag == NS + "EndTime":
            end = _instant(child)
        else:
            raise ProtocolError(f"unexpected {child.tag} in Availability")
    if start is None or end is None or end <= start:
        raise ProtocolError("Availability needs StartTime < EndTime")
    if freebusy_slots(start, end) > MAX_FREEBUSY_SLOTS:
        raise ProtocolError("Availability range longer than 32K half hours")
    return start, end


def _parse_picture(element: Element) -> PictureOptions:
    values: dict[str, int] = {}
    seen: set[str] = set()
    for child in element.children:
        _single(element, seen, child)
        if child.tag == NS + "MaxSize":
            values["max_size"] = _integer(child, 0, 2**31 - 1)
        elif child.tag == NS + "MaxPictures":
            values["max_pictures"] = _integer(child, 0, 9999)
        else:
            raise ProtocolError(f"unexpected {child.tag} in Picture")
    return PictureOptions(**values)


# -- candidates and matching --------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One possible recipient: a local user (``account`` set) or a contact's address."""

    kind: int
    display_name: str
    address: str
    #: Lower-case words a query word may start (names, address parts).
    words: frozenset[str] = frozenset()
    #: Lower-case strings a whole query may equal.
    names: frozenset[str] = frozenset()
    picture: bytes | None = None
    account: str | None = None


def _words(*texts: str) -> set[str]:
    return {w for text in texts if text for w in _WORD.split(text.casefold()) if w}


def _address_terms(address: str) -> tuple[set[str], set[str]]:
    local = address.partition("@")[0]
    folded = address.casefold()
    return _words(local) | {folded}, {folded, local.casefold()}


def local_candidate(account: str, address: str) -> Candidate:
    """The directory entry of a local user."""
    words, names = _address_terms(address)
    words |= _words(account)
    names.add(account.casefold())
    return Candidate(TYPE_GAL, account, address, frozenset(words), frozenset(names),
                     account=account)


def contact_candidates(contact: Contact) -> list[Candidate]:
    """One candidate per e-mail address of a contact."""
    display = contact.display_name or contact.composed_name()
    first, last = contact.first_name, contact.last_name
    base_words = _words(display, first, contact.middle_name, last, contact.nickname,
                        contact.file_as)
    base_names = {n.casefold() for n in (
        display, contact.nickname, contact.file_as, f"{first} {last}".strip(),
        f"{last} {first}".strip(), f"{last}, {first}".strip(", ")) if n}
    found: list[Candidate] = []
    seen: set[str] = set()
    for raw in (contact.email1_address, contact.email2_address, contact.email3_address):
        _, address = parseaddr(raw or "")
        if "@" not in address or address.casefold() in seen:
            continue
        seen.add(address.casefold())
        words, names = _address_terms(address)
        found.append(Candidate(TYPE_CONTACT, display or address, address,
                               frozenset(base_words | words), frozenset(base_names | names),
                               picture=contact.picture or None))
    return found


def merge_candidates(local: Iterable[Candidate], contacts: Iterable[Candidate]) -> list[Candidate]:
    """Local users first, then contacts; a contact with a local user's address
    is folded into that entry (its name, words and photo)."""
    merged: dict[str, Candidate] = {}
    for entry in local:
        merged.setdefault(entry.address.casefold(), entry)
    for entry in contacts:
        key = entry.address.casefold()
        existing = merged.get(key)
        if existing is None:
            merged[key] = entry
        elif existing.kind == TYPE_GAL:
            merged[key] = replace(
                existing,
                display_name=entry.display_name or existing.display_name,
                words=existing.words | entry.words, names=existing.names | entry.names,
                picture=existing.picture or entry.picture)
    return sorted(merged.values(), key=lambda c: (c.kind, c.display_name.casefold(), c.address))


def _query_address(query: str) -> str | None:
    if "@" not in query:
        return None
    _, address = parseaddr(query)
    return address if "@" in address else query.strip()


def match(query: str, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates ``query`` resolves to: exact matches if any, else word-prefix ones."""
    address = _query_address(query)
    if address is not None:
        folded = address.casefold()
        return [c for c in candidates if c.address.casefold() == folded]
    folded = query.strip().casefold()
    exact = [c for c in candidates if folded in c.names]
    if exact:
        return exact
    tokens = _words(query)
    if not tokens:
        return []
    return [c for c in candidates
            if all(any(w.startswith(t) for w in c.words) for t in tokens)]


def _might_match(queries: Sequence[str], raw: str) -> bool:
    """A cheap text test before parsing a vCard: could any query match it?"""
    text = raw.replace("\r\n ", "").replace("\n ", "").replace("\r\n\t", "").casefold()
    for query in queries:
        address = _query_address(query)
        if address is not None:
            if address.casefold() in text:
                return True
        elif all(t in text for t in _words(query)):
            return True
    return False


# -- where candidates come from -------------------------------------------------------------

_USERS_FILES: dict[str, UsersFile] = {}


def _address_of(ctx: CommandContext, account: str) -> str | None:
    if "@" in account:
        return account
    domain = ctx.config.auth.default_domain
    return f"{account}@{domain}" if domain else None


async def local_users(ctx: CommandContext) -> list[Candidate]:
    """The local users with an address (see the module text)."""
    names: set[str] = {ctx.request.account}
    if "users_file" in ctx.config.auth.checkers:
        path = ctx.config.users_file
        users = _USERS_FILES.get(path)
        if users is None:
            users = _USERS_FILES[path] = UsersFile(path)
        try:
            names.update(users.users())
        except UsersFileError as exc:
            ctx.log.warn("ResolveRecipients: users file unreadable: {error}", error=str(exc))
    store: Any = ctx.store
    for device in await store.list_devices():
        names.update(account.user for account in device.accounts)
    found = []
    for name in sorted(names):
        address = _address_of(ctx, name)
        if address is not None:
            found.append(local_candidate(name, address))
    return found


async def contact_entries(groupware: Any, user: str, queries: Sequence[str]) -> list[Candidate]:
    """Candidates from the user's contacts that could match one of ``queries``."""
    found: list[Candidate] = []
    budget = CONTACT_SCAN_LIMIT
    for collection in await groupware.list_collections(user, KIND_CONTACTS):
        if budget <= 0:
            break
        _, ids = await groupware.list_items(user, collection.collection_id)
        ids = list(ids)[:budget]
        budget -= len(ids)
        for start in range(0, len(ids), _BATCH):
            items = await groupware.get_items(user, collection.collection_id,
                                              ids[start:start + _BATCH])
            for item in items:
                if not _might_match(queries, item.data):
                    continue
                try:
                    contact = parse_vcard(item.data)
                except VCardError:
                    continue
                found.extend(contact_candidates(contact))
    return found


# -- free/busy ------------------------------------------------------------------------------


def freebusy_slots(start: datetime.datetime, end: datetime.datetime) -> int:
    """How many 30-minute digits cover [start, end)."""
    return -(-(end - start) // SLOT)


def _utc(value: DateOrTime) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:  # floating: the user's zone is unknown, read as UTC
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)
    return datetime.datetime(value.year, value.month, value.day, tzinfo=_UTC)


def _length(start: DateOrTime | None, end: DateOrTime | None) -> datetime.timedelta:
    if start is None:
        return datetime.timedelta(0)
    if end is None:
        return datetime.timedelta(days=0 if isinstance(start, datetime.datetime) else 1)
    return max(_utc(end) - _utc(start), datetime.timedelta(0))


def _digit(busy_status: int | None, event_status: str | None, my_status: int | None) -> int:
    """0 free .. 3 out of office for one occurrence."""
    if (event_status or "").upper() == "CANCELLED" or my_status == STATUS_DECLINED:
        return 0
    digit = {None: 2, 0: 0, 1: 1, 2: 2, 3: 3, 4: 0}.get(busy_status, 2)
    if (event_status or "").upper() == "TENTATIVE" or \
            my_status in (STATUS_TENTATIVE, STATUS_NOT_RESPONDED):
        digit = min(digit, 1)
    return digit


def _my_status(event: Event, attendees: Sequence[Any] | None, me: frozenset[str]) -> int | None:
    if event.organizer is not None and event.organizer.email.casefold() in me:
        return None
    for attendee in attendees if attendees is not None else event.attendees:
        if attendee.email.casefold() in me:
            return int(attendee.status)
    return None


def busy_periods(event: Event, start: datetime.datetime, end: datetime.datetime,
                 me: frozenset[str]) -> list[tuple[datetime.datetime, datetime.datetime, int]]:
    """(start, end, digit) of the event's occurrences that overlap [start, end),
    in UTC; ``me`` are the owner's addresses (casefolded) for their own answer."""
    if event.start is None:
        return []
    length = _length(event.start, event.end)
    periods: list[tuple[datetime.datetime, datetime.datetime, int]] = []

    def add(begin: datetime.datetime, duration: datetime.timedelta, digit: int) -> None:
        if digit and begin < end and begin + duration > start and duration:
            periods.append((begin, begin + duration, digit))

    master_status = _my_status(event, None, me)
    if not event.rrule or _rule_is_too_fine(event.rrule):
        add(_utc(event.start), length, _digit(event.busy_status, event.status, master_status))
        return periods
    occurrences = _expand(event, start - length, end)
    if occurrences is None:  # an RRULE dateutil cannot read: the first occurrence only
        add(_utc(event.start), length, _digit(event.busy_status, event.status, master_status))
        return periods
    handled: set[tuple[int, ...]] = set()
    for original in occurrences:
        exception = event.exception_for(original)
        if exception is None:
            add(_utc(original), length, _digit(event.busy_status, event.status, master_status))
            continue
        handled.add(same_instant_key(exception.original_start))
        periods.extend(_exception_period(event, exception, length, start, end, me))
    for exception in event.exceptions:
        if same_instant_key(exception.original_start) not in handled:
            periods.extend(_exception_period(event, exception, length, start, end, me))
    return periods


def _exception_period(event: Event, exception: Any, length: datetime.timedelta,
                      start: datetime.datetime, end: datetime.datetime, me: frozenset[str]
                      ) -> list[tuple[datetime.datetime, datetime.datetime, int]]:
    if exception.deleted:
        return []
    begin_value = exception.start or exception.original_start
    duration = _length(exception.start, exception.end) if exception.start and exception.end \
        else length
    begin = _utc(begin_value)
    busy = exception.busy_status if exception.busy_status is not None else event.busy_status
    digit = _digit(busy, exception.status or event.status,
                   _my_status(event, exception.attendees, me))
    if digit and duration and begin < end and begin + duration > start:
        return [(begin, begin + duration, digit)]
    return []


def _rule_is_too_fine(rrule: str) -> bool:
    """SECONDLY / MINUTELY series: no calendar means them; their first occurrence only."""
    upper = rrule.upper()
    return "FREQ=SECONDLY" in upper or "FREQ=MINUTELY" in upper


def _expand(event: Event, low: datetime.datetime, high: datetime.datetime
            ) -> list[DateOrTime] | None:
    """Original starts of the series between ``low`` and ``high`` (UTC), in the
    series' own form (aware, floating or date); None if the RRULE is unreadable."""
    from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

    start = event.start
    assert start is not None
    if isinstance(start, datetime.datetime):
        dtstart = start
    else:
        dtstart = datetime.datetime(start.year, start.month, start.day)
    if dtstart.tzinfo is None:
        low_cmp, high_cmp = low.replace(tzinfo=None), high.replace(tzinfo=None)
    else:
        low_cmp, high_cmp = low, high
    try:
        rule = rrulestr(event.rrule, dtstart=dtstart)
        found: list[DateOrTime] = []
        for occurrence in rule.xafter(low_cmp, count=OCCURRENCE_LIMIT, inc=True):
            if occurrence >= high_cmp:
                break
            found.append(occurrence if isinstance(start, datetime.datetime)
                         else occurrence.date())
        return found
    except (ValueError, TypeError, OverflowError):
        return None


async def merged_free_busy(groupware: Any, user: str, addresses: Iterable[str],
                           start: datetime.datetime, end: datetime.datetime) -> str:
    """The MergedFreeBusy digits of ``user`` for [start, end) from every one
    of their calendars (at most :data:`EVENT_SCAN_LIMIT` items)."""
    count = freebusy_slots(start, end)
    digits = bytearray(b"0" * count)
    me = frozenset(a.casefold() for a in addresses)
    budget = EVENT_SCAN_LIMIT
    for collection in await groupware.list_collections(user, KIND_CALENDAR):
        if budget <= 0:
            break
        _, ids = await groupware.list_items(user, collection.collection_id)
        ids = list(ids)[:budget]
        budget -= len(ids)
        for offset in range(0, len(ids), _BATCH):
            items = await groupware.get_items(user, collection.collection_id,
                                              ids[offset:offset + _BATCH])
            for item in items:
                try:
                    event = parse_ics(item.data)
                except (ICalendarError, ValueError):
                    continue
                for begin, finish, digit in busy_periods(event, start, end, me):
                    first = max(0, (begin - start) // SLOT)
                    last = min(count, -(-(finish - start) // SLOT))
                    mark = ord("0") + digit
                    for slot in range(first, last):
                        if digits[slot] < mark:
                            digits[slot] = mark
    return digits.decode("ascii")


# -- the command -----------------------------------------------------------------------------


@dataclass
class _Request:
    """Per-request state: options, caches, counters."""

    ctx: CommandContext
    options: ResolveOptions
    recipients_count: int
    freebusy: dict[str, str | int] = field(default_factory=dict)


def _top(status: int) -> CommandResponse:
    root = Element(NS + "ResolveRecipients")
    root.add(NS + "Status", str(status))
    return CommandResponse(body=root, status=str(status))


class ResolveRecipientsCommand(Command):
    """``Cmd=ResolveRecipients`` (every protocol version)."""

    name = "ResolveRecipients"

    async def run(self, ctx: CommandContext, body: Element | None) -> CommandResponse:
        """Resolve each To of the request."""
        version = ctx.request.protocol_version
        try:
            recipients, options = parse_request(body, version)
        except ProtocolError as exc:
            ctx.log.info("ResolveRecipients from {device_id}: protocol error ({reason})",
                         device_id=ctx.request.device_id, reason=str(exc))
            return _top(STATUS_PROTOCOL_ERROR)
        groupware = ctx.services.get("groupware")
        try:
            local = await local_users(ctx)
            contacts = [] if groupware is None else \
                await contact_entries(groupware, ctx.request.account, recipients)
        except Exception:
            ctx.log.failure("ResolveRecipients: cannot read the directory or contacts of {user}",
                            user=ctx.request.account)
            return _top(STATUS_SERVER_ERROR)
        candidates = merge_candidates(local, contacts)
        state = _Request(ctx, options, len(recipients))
        root = Element(NS + "ResolveRecipients")
        root.add(NS + "Status", str(STATUS_SUCCESS))
        statuses = []
        for query in recipients:
            response = await _response(state, groupware, query, match(query, candidates))
            statuses.append(response.findtext(NS + "Status") or "")
            root.append(response)
        ctx.log.info("ResolveRecipients from {device_id}: {count} To, statuses {statuses}",
                     device_id=ctx.request.device_id, count=len(recipients),
                     statuses=",".join(statuses))
        return CommandResponse(body=root, status=str(STATUS_SUCCESS))


async def _response(state: _Request, groupware: Any, query: str,
                    found: list[Candidate]) -> Element:
    options = state.options
    response = Element(NS + "Response")
    response.add(NS + "To", query)
    if not found:
        response.add(NS + "Status", str(STATUS_UNRESOLVED))
        response.add(NS + "RecipientCount", "0")
        return response
    resolved = len(found) == 1
    if resolved:
        returned, status = found, STATUS_SUCCESS
    else:
        limit = options.max_ambiguous if options.max_ambiguous is not None \
            else DEFAULT_MAX_AMBIGUOUS
        returned = found[:limit]
        status = STATUS_AMBIGUOUS if len(returned) == len(found) else STATUS_AMBIGUOUS_PARTIAL
    response.add(NS + "Status", str(status))
    response.add(NS + "RecipientCount", str(len(returned)))
    pictures = 0
    for candidate in returned:
        recipient = response.add(NS + "Recipient")
        recipient.add(NS + "Type", str(candidate.kind))
        recipient.add(NS + "DisplayName", candidate.display_name)
        recipient.add(NS + "EmailAddress", candidate.address)
        if resolved and options.availability is not None:
            recipient.append(await _availability(state, groupware, candidate))
        if resolved and options.certificate_retrieval in (2, 3):
            certificates = recipient.add(NS + "Certificates")
            certificates.add(NS + "Status", str(STATUS_NO_CERTIFICATE))
            certificates.add(NS + "CertificateCount", "0")
        if options.picture is not None:
            picture, sent = _picture(options.picture, candidate, pictures)
            pictures += sent
            recipient.append(picture)
    return response


async def _availability(state: _Request, groupware: Any, candidate: Candidate) -> Element:
    element = Element(NS + "Availability")
    assert state.options.availability is not None
    start, end = state.options.availability
    if state.recipients_count > MAX_AVAILABILITY_TO:
        element.add(NS + "Status", str(AVAILABILITY_TOO_MANY))
        return element
    if candidate.kind != TYPE_GAL or candidate.account is None or groupware is None:
        element.add(NS + "Status", str(AVAILABILITY_FAILURE))
        return element
    account = candidate.account
    result = state.freebusy.get(account)
    if result is None:
        addresses = {candidate.address}
        own = _address_of(state.ctx, account)
        if own:
            addresses.add(own)
        try:
            result = await merged_free_busy(groupware, account, addresses, start, end)
        except Exception:
            state.ctx.log.failure("ResolveRecipients: free/busy of {account} unavailable",
                                  account=account)
            result = AVAILABILITY_TRANSIENT
        state.freebusy[account] = result
    if isinstance(result, int):
        element.add(NS + "Status", str(result))
        return element
    element.add(NS + "Status", str(STATUS_SUCCESS))
    element.add(NS + "MergedFreeBusy", result)
    return element


def _picture(options: PictureOptions, candidate: Candidate, sent_so_far: int
             ) -> tuple[Element, int]:
    """The Picture element of one recipient and whether a photo was sent."""
    element = Element(NS + "Picture")
    data = candidate.picture
    if not data:
        element.add(NS + "Status", str(PICTURE_NONE))
        return element, 0
    if options.max_size is not None and len(data) > options.max_size:
        element.add(NS + "Status", str(PICTURE_TOO_LARGE))
        return element, 0
    if options.max_pictures is not None and sent_so_far >= options.max_pictures:
        element.add(NS + "Status", str(PICTURE_LIMIT))
        return element, 0
    element.add(NS + "Status", str(STATUS_SUCCESS))
    element.add(NS + "Data", data)
    return element, 1


__all__ = [
    "Candidate", "ProtocolError", "ResolveOptions", "ResolveRecipientsCommand",
    "busy_periods", "contact_candidates", "match", "merge_candidates", "merged_free_busy",
    "parse_request",
]
