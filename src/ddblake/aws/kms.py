"""Telling a KMS key's denial from any other, and saying which key to grant.

An access error is a KMS one only when AWS says so: a ``kms:<Action>``, a ``arn:aws:kms:`` key ARN,
a ``KMS…Exception`` code, or the words "KMS key" / "customer master key". The bare letters "kms"
are no signal: they may be part of a table's or a role's name (``kms-audit-log``), and turning a
plain ``dynamodb:Scan`` denial into KMS advice would send the operator to the wrong policy.
"""

from __future__ import annotations

import re
from typing import Final

_KMS_SIGNAL: Final = re.compile(
    r"\bkms:[A-Za-z]+"  # an action: kms:Decrypt (names of tables and roles hold no ':')
    r"|\barn:aws[\w-]*:kms:"  # a key's ARN
    r"|\bcustomer master key\b|\bKMS key\b",  # the words AWS uses (no name holds a space)
    re.IGNORECASE,
)
# An error code: KMSAccessDeniedException, KMS.DisabledException, AWSKMSException - in capitals, as
# AWS writes them (a table named "kmsAuditException" is no signal).
_KMS_CODE: Final = re.compile(r"KMS[\w.]*Exception\b")
_ANY_ARN: Final = re.compile(r"\barn:[^\s,;\"']+")
_KEY_ARN: Final = re.compile(r"\barn:aws[\w-]*:kms:[\w-]*:(\d{12}):(?:key|alias)/[^\s,;\"']+")


def is_kms_error(message: str, code: str = "") -> bool:
    """Whether an AWS error (its message and code) is about a KMS key."""
    names_out = _ANY_ARN.sub("", message)  # a table or role named KMSAuditException is no code
    return bool(_KMS_CODE.search(code) or _KMS_CODE.search(names_out) or _KMS_SIGNAL.search(message))


def kms_key_in(message: str) -> tuple[str, str] | None:
    """The KMS key ARN an AWS error message names, and its account; None if it names none."""
    match = _KEY_ARN.search(message)
    return (match.group(0), match.group(1)) if match else None


def kms_hint(message: str, who: str, *, code: str = "", caller_account: str | None = None) -> str | None:
    """The fix for an access error raised on a KMS key (the table's, or an export bucket's), else None.

    Args:
        message: the AWS error message.
        who: whom to grant (``the role``, ``the principal``).
        code: the AWS error code (``KMSAccessDeniedException`` is a signal on its own).
        caller_account: the account of the principal that made the call, when known: a key in
            another account needs a grant in the key's policy *and* in the principal's own policy.
    """
    if not is_kms_error(message, code):
        return None
    key = kms_key_in(message)
    if key is None:
        return (
            f"the table is encrypted with a customer-managed KMS key that {who} may not use: grant {who} "
            "kms:Decrypt and kms:DescribeKey on that key (in the key policy, or in its own policy where the "
            "key policy delegates to IAM)"
        )
    arn, account = key
    if caller_account and caller_account != account:
        where = (
            f"the key is in account {account}, not the caller's {caller_account}: the key policy must "
            f"allow {who}, and {who}'s own IAM policy must allow the key too"
        )
    else:
        where = "in the key policy, or in its own policy where the key policy delegates to IAM"
    return (
        f"the KMS key {arn} (account {account}) refused {who}: grant {who} kms:Decrypt and "
        f"kms:DescribeKey on that key ({where})"
    )
