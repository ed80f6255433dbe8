"""The offline-store compaction job's core: Athena OPTIMIZE (bin-pack) then VACUUM of one feature group's table.

An EventBridge schedule per feature group (``offline_store.compaction``)
invokes :mod:`lambda.compaction.compact` (a thin handler), which calls
:func:`mlops_platform.compaction.compact.handle`.

Standard library and boto3 only: synth bundles this package alone, next to the
handler (``bundled_asset(lambda/compaction, "mlops_platform.compaction")``).
"""
