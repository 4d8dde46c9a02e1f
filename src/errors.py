"""The one exception type for mistakes a user can fix: reported as a clear line, never a traceback."""


class GroupwiseError(Exception):
    """A problem with the user's config or input files.

    The message says what was wrong, where (the config key and value) and what to do.
    Several problems found together are reported as one error, one per line.
    """

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
