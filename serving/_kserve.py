"""Import KServe without letting it read our command line.

KServe 0.21 runs ``argparse.parse_known_args()`` over ``sys.argv`` when ``kserve.model_server`` is
imported, so flags of the program that imports it (``--workers``, abbreviations of
``--model_name`` …) silently become server settings. Every serving module imports KServe from here,
with ``sys.argv`` reduced to the program name for the duration of the import.
"""

from __future__ import annotations

import sys

_argv = sys.argv
sys.argv = _argv[:1]
try:
    import kserve
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _argv

__all__ = [
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceError",
    "InvalidInput",
    "kserve",
]
