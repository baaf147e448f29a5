"""The one exception type the CLI turns into a one-line message and an exit code."""

EXIT_OK = 0
EXIT_FINDINGS = 1  # invalid objects, findings at or above the threshold, failed targets, drift
EXIT_USAGE = 2  # bad flags, bad configuration, a missing tool


class MeshreadyError(Exception):
    """An error a user can fix; `str(err)` is the whole message, on one line."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
