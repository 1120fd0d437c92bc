"""EAS status codes as data.

The common status codes (MS-ASCMD 2.2.2) are valid in the top ``Status``
element of every command from protocol version 14.0; before 14.0 the same
conditions are reported with HTTP status codes (see
:data:`HTTP_BEFORE_14`).  The per-command codes follow (MS-ASPROV 2.2.2.54,
MS-ASCMD 2.2.3.177.5 and 2.2.3.177.15).
"""
from __future__ import annotations

from enum import IntEnum


class CommonStatus(IntEnum):
    """MS-ASCMD 2.2.2, common status codes (protocol version 14.0 and later)."""

    InvalidContent = 101
    InvalidWBXML = 102
    InvalidXML = 103
    InvalidDateTime = 104
    InvalidCombinationOfIDs = 105
    InvalidIDs = 106
    InvalidMIME = 107
    DeviceIdMissingOrInvalid = 108
    DeviceTypeMissingOrInvalid = 109
    ServerError = 110
    ServerErrorRetryLater = 111
    ActiveDirectoryAccessDenied = 112
    MailboxQuotaExceeded = 113
    MailboxServerOffline = 114
    SendQuotaExceeded = 115
    MessageRecipientUnresolved = 116
    MessageReplyNotAllowed = 117
    MessagePreviouslySent = 118
    MessageHasNoRecipient = 119
    MailSubmissionFailed = 120
    MessageReplyFailed = 121
    AttachmentIsTooLarge = 122
    UserHasNoMailbox = 123
    UserCannotBeAnonymous = 124
    UserPrincipalCouldNotBeFound = 125
    UserDisabledForSync = 126
    UserOnNewMailboxCannotSync = 127
    UserOnLegacyMailboxCannotSync = 128
    DeviceIsBlockedForThisUser = 129
    AccessDenied = 130
    AccountDisabled = 131
    SyncStateNotFound = 132
    SyncStateLocked = 133
    SyncStateCorrupt = 134
    SyncStateAlreadyExists = 135
    SyncStateVersionInvalid = 136
    CommandNotSupported = 137
    VersionNotSupported = 138
    DeviceNotFullyProvisionable = 139
    RemoteWipeRequested = 140
    LegacyDeviceOnStrictPolicy = 141
    DeviceNotProvisioned = 142
    PolicyRefresh = 143
    InvalidPolicyKey = 144
    ExternallyManagedDevicesNotAllowed = 145
    NoRecurrenceInCalendar = 146
    UnexpectedItemClass = 147
    RemoteServerHasNoSSL = 148
    InvalidStoredRequest = 149
    ItemNotFound = 150
    TooManyFolders = 151
    NoFoldersFound = 152
    ItemsLostAfterMove = 153
    FailureInMoveOperation = 154
    MoveCommandDisallowedForNonPersistentMoveAction = 155
    MoveCommandInvalidDestinationFolder = 156
    AvailabilityTooManyRecipients = 160
    AvailabilityDLLimitReached = 161
    AvailabilityTransientFailure = 162
    AvailabilityFailure = 163
    BodyPartPreferenceTypeNotSupported = 164
    DeviceInformationRequired = 165
    InvalidAccountId = 166
    AccountSendDisabled = 167
    IRM_FeatureDisabled = 168
    IRM_TransientError = 169
    IRM_PermanentError = 170
    IRM_InvalidTemplateID = 171
    IRM_OperationNotPermitted = 172
    NoPicture = 173
    PictureTooLarge = 174
    PictureLimitReached = 175
    BodyPart_ConversationTooLarge = 176
    MaximumDevicesReached = 177


class ProvisionStatus(IntEnum):
    """MS-ASPROV 2.2.2.54.2, the Status child of Provision (plus the common codes)."""

    Success = 1
    ProtocolError = 2
    ServerError = 3


class PolicyStatus(IntEnum):
    """MS-ASPROV 2.2.2.54.1, the Status child of Policy in a response."""

    Success = 1
    NoPolicy = 2
    UnknownPolicyType = 3
    PolicyDataCorrupt = 4
    WrongPolicyKey = 5


class ClientPolicyStatus(IntEnum):
    """MS-ASPROV 2.2.2.54.1, the Status child of Policy in an acknowledgement."""

    Applied = 1
    PartiallyApplied = 2
    NotApplied = 3
    ThirdParty = 4


class RemoteWipeStatus(IntEnum):
    """MS-ASPROV 2.2.2.54.3, the Status child of (AccountOnly)RemoteWipe in a request."""

    Success = 1
    Failure = 2


class FolderSyncStatus(IntEnum):
    """MS-ASCMD 2.2.3.177.5, FolderSync Status."""

    Success = 1
    ServerError = 6
    InvalidSyncKey = 9
    IncorrectRequestFormat = 10
    UnknownError = 11
    CodeUnknown = 12


class SettingsStatus(IntEnum):
    """MS-ASCMD 2.2.3.177.15, Settings Status."""

    Success = 1
    ProtocolError = 2
    AccessDenied = 3
    ServerUnavailable = 4
    InvalidArguments = 5
    ConflictingArguments = 6
    DeniedByPolicy = 7


#: HTTP codes that stand for the conditions before protocol version 14.0
#: (MS-ASHTTP 2.2.2.1.1, MS-ASPROV 3.1.5.1).
HTTP_NEEDS_PROVISIONING = 449  # "Retry With": provision, then retry
HTTP_BAD_REQUEST = 400
HTTP_FORBIDDEN = 403
HTTP_NOT_IMPLEMENTED = 501
HTTP_SERVER_ERROR = 500
HTTP_UNAVAILABLE = 503

#: The HTTP status that reports a common status before 14.0.
HTTP_BEFORE_14: dict[CommonStatus, int] = {
    CommonStatus.InvalidContent: HTTP_BAD_REQUEST,
    CommonStatus.InvalidWBXML: HTTP_BAD_REQUEST,
    CommonStatus.CommandNotSupported: HTTP_NOT_IMPLEMENTED,
    CommonStatus.VersionNotSupported: HTTP_NOT_IMPLEMENTED,
    CommonStatus.RemoteWipeRequested: HTTP_NEEDS_PROVISIONING,
    CommonStatus.DeviceNotProvisioned: HTTP_NEEDS_PROVISIONING,
    CommonStatus.PolicyRefresh: HTTP_NEEDS_PROVISIONING,
    CommonStatus.InvalidPolicyKey: HTTP_NEEDS_PROVISIONING,
    CommonStatus.DeviceNotFullyProvisionable: HTTP_FORBIDDEN,
    CommonStatus.ServerError: HTTP_SERVER_ERROR,
    CommonStatus.ServerErrorRetryLater: HTTP_UNAVAILABLE,
}


def common_status_name(code: int) -> str | None:
    """The MS-ASCMD name of a common status code, or None."""
    try:
        return CommonStatus(code).name
    except ValueError:
        return None
