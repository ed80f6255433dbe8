"""The modules of the approval Lambda asset (``lambda/approval``), for the tests.

conftest.py puts ``lambda/approval`` on ``sys.path`` as the Lambda runtime
does; importing them here keeps that in one place and lets the tests say
``from tests.approval.lambdas import guard``.
"""

import aws
import common
import guard
import messages
import notify
import policy
import rejected
import releases
import settings
import state_change

__all__ = [
    "aws",
    "common",
    "guard",
    "messages",
    "notify",
    "policy",
    "rejected",
    "releases",
    "settings",
    "state_change",
]
