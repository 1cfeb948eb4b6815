"""Moved to personaforge.native (the foundation), so evaluation can run native children too; kept for imports."""

from personaforge.native import (  # noqa: F401 - re-exported
    SIGNAL_HINTS,
    NativeCrash,
    child_env,
    died_by_signal,
    run_child,
    signal_name,
)
