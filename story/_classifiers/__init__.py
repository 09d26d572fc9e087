"""Every classifier: its prompt, its output schema, its validator and its safe default.

Validators take whatever the model returned (parsed JSON, JSON text with
chatter around it, or garbage), clamp it into range, and never raise:
anything unusable becomes the classifier's safe default.
"""

from ._addressee import (
    ADDRESSEE_DEFAULT,
    ADDRESSEE_SCHEMA,
    addressee_prompt,
    addressee_schema,
    validate_addressee,
)
from ._coerce import load_json
from ._interjection import (
    INTERJECTION_DEFAULT,
    INTERJECTION_SCHEMA,
    InterjectionDecision,
    Witness,
    interjection_prompt,
    interjection_schema,
    validate_interjection,
)
from ._lifecycle import (
    LEGAL_MOVES,
    LIFECYCLE_DEFAULT,
    LIFECYCLE_SCHEMA,
    OpenEvent,
    Transition,
    lifecycle_needed,
    lifecycle_prompt,
    validate_lifecycle,
)
from ._scene_close import (
    SCENE_CLOSE_DEFAULT,
    SCENE_CLOSE_SCHEMA,
    SceneCloseDecision,
    scene_close_prompt,
    validate_scene_close,
)
from ._scene_summary import (
    SCENE_SUMMARY_SCHEMA,
    SceneSummaryResult,
    default_scene_summary,
    extractive_summary,
    scene_summary_prompt,
    validate_scene_summary,
)
from ._significance import (
    SIGNIFICANCE_DEFAULT,
    SIGNIFICANCE_SCHEMA,
    significance_prompt,
    validate_significance,
)
from ._state_update import (
    STATE_UPDATE_DEFAULT,
    STATE_UPDATE_SCHEMA,
    StateChange,
    Target,
    default_state_updates,
    judge_by_words,
    state_update_prompt,
    state_updates_schema,
    validate_state_update,
    validate_state_updates,
)

__all__ = [
    "ADDRESSEE_DEFAULT",
    "ADDRESSEE_SCHEMA",
    "INTERJECTION_DEFAULT",
    "INTERJECTION_SCHEMA",
    "LEGAL_MOVES",
    "LIFECYCLE_DEFAULT",
    "LIFECYCLE_SCHEMA",
    "SCENE_CLOSE_DEFAULT",
    "SCENE_CLOSE_SCHEMA",
    "SCENE_SUMMARY_SCHEMA",
    "SIGNIFICANCE_DEFAULT",
    "SIGNIFICANCE_SCHEMA",
    "STATE_UPDATE_DEFAULT",
    "STATE_UPDATE_SCHEMA",
    "InterjectionDecision",
    "OpenEvent",
    "SceneCloseDecision",
    "SceneSummaryResult",
    "StateChange",
    "Target",
    "Transition",
    "Witness",
    "addressee_prompt",
    "addressee_schema",
    "default_scene_summary",
    "default_state_updates",
    "extractive_summary",
    "interjection_prompt",
    "interjection_schema",
    "judge_by_words",
    "lifecycle_needed",
    "lifecycle_prompt",
    "load_json",
    "scene_close_prompt",
    "scene_summary_prompt",
    "significance_prompt",
    "state_update_prompt",
    "state_updates_schema",
    "validate_addressee",
    "validate_interjection",
    "validate_lifecycle",
    "validate_scene_close",
    "validate_scene_summary",
    "validate_significance",
    "validate_state_update",
    "validate_state_updates",
]
