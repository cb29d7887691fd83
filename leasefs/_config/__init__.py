"""Layer 1: configuration and local state, with no I/O beyond local files and processes.

Settings declared as data with their sources (`_settings`), default names (`_identity`), the
branch a tree has checked out (`_branch`), the record of running mounts (`_registry`),
member credentials from `leasefs join` (`_credentials`), settings `leasefs join` writes into
a repository (`_repo_settings`), the environment of a `leasefs run` (`_run_env`), starting
detached processes (`_detach`) and the hand-off checks named in ``leasefs.toml``
(`_checks`). Imports `leasefs.wire` only.
"""

from ._branch import checked_out_branch as checked_out_branch
from ._branch import git_dir as git_dir
from ._checks import configured_checks as configured_checks
from ._checks import run_checks as run_checks
from ._detach import StartFailed as StartFailed
from ._detach import log_since as log_since
from ._detach import start_detached as start_detached
from ._identity import default_agent_name as default_agent_name
from ._identity import default_workspace as default_workspace
from ._identity import repository_of as repository_of
from ._repo_settings import write_repo_settings as write_repo_settings
from ._run_env import RUN_MARKER_ENV as RUN_MARKER_ENV
from ._run_env import RunEnvironment as RunEnvironment
from ._settings import SETTINGS as SETTINGS
from ._settings import Setting as Setting
from ._settings import SettingsError as SettingsError
from ._settings import default_data_dir as default_data_dir
from ._settings import resolve as resolve
from ._settings import user_config_path as user_config_path

__all__ = [
    "RUN_MARKER_ENV",
    "SETTINGS",
    "RunEnvironment",
    "Setting",
    "SettingsError",
    "StartFailed",
    "checked_out_branch",
    "configured_checks",
    "default_agent_name",
    "default_data_dir",
    "default_workspace",
    "git_dir",
    "log_since",
    "repository_of",
    "resolve",
    "run_checks",
    "start_detached",
    "user_config_path",
    "write_repo_settings",
]
