"""The generic actor runtime on trio. Knows nothing of chats or models.

Owns: actors (a task with a bounded mailbox, one message at a time, a work
nursery for long work), ``tell``/``ask`` with backpressure and timeouts,
supervision with restart policies and intensity, registries that spawn on
first message and passivate when idle, topics that fan out without ever
blocking the publisher, and shutdown within a bound. See docs/runtime.md.
"""

from ._actor import Actor
from ._errors import (
    ActorError,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    RestartIntensityExceeded,
)
from ._policy import RestartPolicy
from ._ref import DEFAULT_ASK_TIMEOUT, ActorRef
from ._registry import Registry, RegistryRef
from ._statistics import (
    ActorStatistics,
    RegistryStatistics,
    SubscriptionStatistics,
    SystemStatistics,
    TopicStatistics,
)
from ._system import ActorSystem, open_actor_system
from ._topic import Lagged, Merge, Subscription, Topic

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "Actor",
    "ActorError",
    "ActorFailed",
    "ActorRef",
    "ActorStatistics",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Lagged",
    "MailboxFull",
    "Merge",
    "Registry",
    "RegistryRef",
    "RegistryStatistics",
    "RestartIntensityExceeded",
    "RestartPolicy",
    "Subscription",
    "SubscriptionStatistics",
    "SystemStatistics",
    "Topic",
    "TopicStatistics",
    "open_actor_system",
]
