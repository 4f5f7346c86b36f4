"""Who is acting: the user name nbprod records beside what a person did.

Packaging records it in the provenance and in a forced override, the packaging run in MLflow
names it, ``nbprod promote`` records it as the promoter (unless ``--by`` names someone) and the
review queue as the reviewer (unless ``NBPROD_REVIEWER`` or ``reviewer=`` names someone).
"""

from __future__ import annotations

import getpass

UNKNOWN = "unknown"


def user_name() -> str:
    """The login name of the process's user, or ``"unknown"`` where there is none (a container
    running under a numeric user id with no entry in the password database, for example)."""
    try:
        return str(getpass.getuser())
    except Exception:  # getpass raises OSError or KeyError, depending on the platform
        return UNKNOWN
