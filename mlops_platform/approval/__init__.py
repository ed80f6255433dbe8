"""The approval core: one package that the approval Lambdas and the ``mlops`` CLI both import.

Standard library and boto3 only (the Lambda runtime provides boto3): synth
bundles this package, with an empty ``mlops_platform/__init__.py``, next to
the thin handlers of ``lambda/approval`` (:mod:`stacks.components.lambda_asset`).

Modules: ``policy`` (pure rules), ``state_change`` and ``api_call`` (event
parsing), ``releases`` (the release table), ``aws`` (clients and the shared
calls), ``messages`` (notification texts), ``settings`` (the Lambdas'
environment), ``handling`` (what the handlers share), ``log``.
"""
