-- easyncd state store, schema version 3: the follow-up flags devices set on
-- mail (MS-ASEMAIL Flag: status, start / due / completion dates, reminder...),
-- which IMAP has no place for (it keeps only \Flagged).  One row per message
-- of a user's mailbox, as a JSON object of the Flag's child elements; a
-- UIDVALIDITY change makes the rows of the old one meaningless.
CREATE TABLE mail_flags (
    username TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (username, mailbox, uidvalidity, uid)
);
