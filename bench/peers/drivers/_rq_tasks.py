"""The RQ benchmark's job function: RQ workers import jobs by dotted path, never from ``__main__``."""


def noop(i: int) -> None:
    return None
