"""The leasefs coordinator: leases, snapshots, events and audit for a team of agents."""

from ._app import create_app as create_app
from ._limits import Limits as Limits
from ._serve import ServeOptions as ServeOptions
from ._serve import serve as serve
from ._service import Coordinator as Coordinator

__all__ = ["Coordinator", "Limits", "ServeOptions", "create_app", "serve"]
