"""SageMaker HyperPod (Slurm) lifecycle scripts and the parameters document they read.

``SCRIPTS_DIR`` is the folder to upload; ``provisioning_parameters*`` build the
provisioning_parameters.json that goes beside it. See ``params`` for which builder to use.
"""

from hyperpod_lifecycle.params import (
    DEFAULT_MOUNT_POINT,
    ON_CREATE,
    PARAMETERS_FILE,
    SCRIPTS_DIR,
    provisioning_parameters,
    provisioning_parameters_template,
    to_json,
)

__all__ = [
    "DEFAULT_MOUNT_POINT",
    "ON_CREATE",
    "PARAMETERS_FILE",
    "SCRIPTS_DIR",
    "provisioning_parameters",
    "provisioning_parameters_template",
    "to_json",
]
