"""What the tests share besides fixtures: real coordinator processes, event reads, a proxy."""

from .coordinator import CoordinatorProcess, serving, wait_until
from .events import take_events
from .proxy import TcpProxy

__all__ = ["CoordinatorProcess", "TcpProxy", "serving", "take_events", "wait_until"]
