"""The approval handlers (``lambda/approval``) and the approval core, for the tests.

conftest.py puts ``lambda/approval`` on ``sys.path`` as the Lambda runtime
does (the asset root), so the handlers import by their module names; the core
is the ``mlops_platform.approval`` package they import.
"""

import guard
import notify
import rejected

from mlops_platform.approval import aws, handling, messages, policy, releases, settings, state_change

__all__ = [
    "aws",
    "guard",
    "handling",
    "messages",
    "notify",
    "policy",
    "rejected",
    "releases",
    "settings",
    "state_change",
]
