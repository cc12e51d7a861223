"""The role settings of a load or capture, checked before any call: ``--assume-role`` and
``--external-id`` (or ``DDBLAKE_ASSUME_ROLE`` / ``DDBLAKE_EXTERNAL_ID``, or the settings file).

A malformed value is a usage error naming where it came from, rather than a puzzling STS error
later; the external ID, shared with the role's owner much as a password is, is never quoted.
"""

from __future__ import annotations

import re
from typing import Final

from ddblake.errors import ConfigError
from ddblake.settings import places, sourced

_ROLE_ARN: Final = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)  # the whole value
_EXTERNAL_ID: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)  # STS's rule for ExternalId
_EXTERNAL_ID_CHARACTERS: Final = re.compile(r"[\w+=,.@:/-]*", re.ASCII)


def check_role_arn(role_arn: str | None, *, option: str = "--assume-role") -> None:
    """Refuse a malformed role ARN before any call, rather than as a puzzling STS error later.

    ``option``: where the value came from (``--assume-role``, ``DDBLAKE_ASSUME_ROLE``, the settings
    file's key), named in the message.

    Raises:
        ConfigError: ``role_arn`` is set and is not an IAM role ARN; the message names its source.
    """
    if role_arn and not _ROLE_ARN.fullmatch(role_arn):
        given = f"{option} {role_arn!r}" if " " not in option else f"{role_arn!r} ({option})"
        raise ConfigError(
            f"{given} is not an IAM role ARN (expected arn:aws:iam::<12-digit account>:role/<name>); "
            "correct it there"
        )


def check_external_id(
    role_arn: str | None, external_id: str | None, *, source: str = "--external-id"
) -> None:
    """Refuse an ExternalId without a role to assume (it is only ever sent with sts:AssumeRole), or
    one STS would refuse (2 to 1224 characters of letters, digits and ``_+=,.@:/-``).

    Without the first check it was dropped in silence, and a user who meant to read another
    account's table learned of the missing role only from an access error naming their own account;
    without the second, STS's parameter check was reported as a bug of ddblake's.

    Args:
        role_arn: the role to assume, if any.
        external_id: the external ID, if any; never quoted in a message (it is shared with the
            role's owner, much as a password is).
        source: where the external ID came from (``--external-id``, ``DDBLAKE_EXTERNAL_ID``, the
            settings file's key), named in the message.

    Raises:
        ConfigError: names the settings involved and what to do.
    """
    if external_id and not role_arn:
        raise ConfigError(
            f"an external ID is set ({places('external_id', '--external-id')}) but no role to assume "
            f"({places('assume_role', '--assume-role')}): the external ID is only sent when assuming a "
            "role; pass --assume-role arn:aws:iam::<owner account>:role/<role> with it, or drop the "
            "external ID"
        )
    if external_id and not _EXTERNAL_ID.fullmatch(external_id):
        odd = "" if _EXTERNAL_ID_CHARACTERS.fullmatch(external_id) else ", some of them not allowed"
        raise ConfigError(
            f"the external ID from {source} is not one STS accepts ({len(external_id)} character(s){odd}): "
            "it must be 2 to 1224 characters of A-Z a-z 0-9 and _ + = , . @ : / -; correct it there "
            "(use the external ID the role's owner gave you)"
        )


def role_settings(assume_role: str | None, external_id: str | None) -> tuple[str | None, str | None]:
    """The role to assume and its external ID: each argument, else ``DDBLAKE_ASSUME_ROLE`` /
    ``DDBLAKE_EXTERNAL_ID``, else the settings file; checked, an error naming where the bad one
    came from (a role ARN from the settings file is not blamed on ``--assume-role``).

    Raises:
        ConfigError: see :func:`check_role_arn` and :func:`check_external_id`.
    """
    role, role_from = sourced("assume_role", "--assume-role", assume_role or None, str)
    external, external_from = sourced("external_id", "--external-id", external_id or None, str)
    check_role_arn(role, option=role_from or "--assume-role")
    check_external_id(role, external, source=external_from or "--external-id")
    return role, external
