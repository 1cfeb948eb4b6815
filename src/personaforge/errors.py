"""The one exception type for errors a user can cause and fix."""


class PersonaForgeError(Exception):
    """A user-fixable problem. The message is one line: what is wrong (file:line or key) and what to do.

    The CLI prints it as ``error: <message>`` without a traceback and exits with code 2.
    """

    def __init__(self, message: str) -> None:
        # Keep it to one line: multi-line messages break scripts that parse stderr.
        super().__init__(" ".join(str(message).split()))
