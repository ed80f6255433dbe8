"""Synth-time SageMaker pipeline definitions and the step scripts they run.

Public API (importing this package does not import the SageMaker SDK):

- ``PipelineInputs`` (``inputs``): everything a definition depends on;
- ``definition_for(inputs, cache_dir)`` (``cache``): cached definition JSON;
- ``build_definition(inputs)`` (``tabular``): uncached build (imports the SDK);
- ``SCRIPTS_DIR``, ``script_path``, ``build_train_source_tarball`` (``sources``):
  the step code the caller uploads as assets.
"""

from .cache import definition_for
from .inputs import PipelineInputs
from .sources import SCRIPTS_DIR, build_train_source_tarball, script_path

__all__ = [
    "PipelineInputs",
    "SCRIPTS_DIR",
    "build_train_source_tarball",
    "definition_for",
    "script_path",
]
