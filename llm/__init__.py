"""Model backends behind one small interface: stream text, complete JSON.

Owns: the request and settings types, the ``openai`` backend (any
OpenAI-compatible server, over httpx, its events split from the raw bytes),
the ``local`` backend (llama.cpp in a supervised worker process, the packaged Gemma 3 270M by
default: a crash inside it costs one request; it keeps each chat's evaluated
prompt in a bounded cache and never lets the model copy a run of the
transcript), the ``scripted`` backend
(canned replies for tests and demos), connection caps in three priorities
(narrative beats, then the classifier passes a turn waits on, then the
rest), timeouts, retries, the JSON modes a server is asked in, and the
tolerant JSON extractor. See docs/models.md.
"""

from ._errors import (
    ModelError,
    ModelHTTPError,
    ModelLength,
    ModelOutputError,
    ModelProtocolError,
    ModelStalled,
    ModelTimeout,
)
from ._json import check_schema, extract_json
from ._limit import Priority, PriorityLimiter, classifier_priority
from ._local import LocalBackend, transcript
from ._open import make_backend, open_backend
from ._openai import GO_ON, OpenAIBackend, continuation_messages
from ._scripted import ScriptedBackend, split_tokens
from ._statistics import (
    BackendStatistics,
    LimiterStatistics,
    LocalStatistics,
    OpenAIStatistics,
    ScriptedStatistics,
)
from ._types import (
    BACKENDS,
    JSON_MODES,
    Backend,
    BackendKind,
    ClassifierRequest,
    JsonMode,
    Message,
    ModelSettings,
    NarrativeRequest,
    Timeouts,
)

__all__ = [
    "BACKENDS",
    "GO_ON",
    "JSON_MODES",
    "Backend",
    "BackendKind",
    "BackendStatistics",
    "ClassifierRequest",
    "JsonMode",
    "LimiterStatistics",
    "LocalBackend",
    "LocalStatistics",
    "Message",
    "ModelError",
    "ModelHTTPError",
    "ModelLength",
    "ModelOutputError",
    "ModelProtocolError",
    "ModelSettings",
    "ModelStalled",
    "ModelTimeout",
    "NarrativeRequest",
    "OpenAIBackend",
    "OpenAIStatistics",
    "Priority",
    "PriorityLimiter",
    "ScriptedBackend",
    "ScriptedStatistics",
    "Timeouts",
    "check_schema",
    "classifier_priority",
    "continuation_messages",
    "extract_json",
    "make_backend",
    "open_backend",
    "split_tokens",
    "transcript",
]
