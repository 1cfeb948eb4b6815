"""The one exception type for errors a user can cause and fix."""


class PersonaForgeError(Exception):
    """A user-fixable problem. The message is one line: what is wrong (file:line or key) and what to do.

    The CLI prints it as ``error: <message>`` without a traceback and exits with code 2.
    """

    def __init__(self, message: str) -> None:
        from personaforge.redaction import scrub

        # Keep it to one line: multi-line messages break scripts that parse stderr. Scrubbed: messages are printed,
        # logged and stored in status.json, so a token that slipped into one must not travel with it.
        super().__init__(scrub(" ".join(str(message).split())))
