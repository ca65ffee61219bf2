"""The one exception type the CLI turns into a clean message instead of a traceback."""


class UserInputError(ValueError):
    """A problem with the user's configuration or data; the message names the fix."""


class TrainingDiverged(UserInputError):
    """The loss became NaN or Inf; the fix is in the settings (learning rate, clipping, data)."""
