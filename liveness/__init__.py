"""liveness: an offline face-liveness certification engine.

Public API; everything not listed in ``__all__`` is private.
"""

from liveness.config import Config
from liveness.errors import (
    ChallengeError,
    ConfigError,
    FamilyError,
    LivenessError,
    MediaError,
    ModelError,
    RecordError,
)
from liveness.results import Decision, DigitTiming, Reason, Score, Verdict

__version__ = "0.1.0"

__all__ = [
    "ChallengeError",
    "Config",
    "ConfigError",
    "Decision",
    "DigitTiming",
    "FamilyError",
    "LivenessError",
    "MediaError",
    "ModelError",
    "Reason",
    "RecordError",
    "Score",
    "Verdict",
    "__version__",
]
