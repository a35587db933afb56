"""Redis group module: being written."""

__all__: list[str] = []
