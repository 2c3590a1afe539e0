"""Experiment names: one safe folder name each, so that no name reaches outside the output folder."""

import re


def check_name(name, what="name"):
    """An experiment name that is one safe folder name; ValueError naming what is valid."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name in RESERVED:
        reserved = f", and not {', '.join(RESERVED)}" if name in RESERVED else ""
        shown = f"{name[:40]!r}... ({len(name)} characters)" if isinstance(name, str) and len(name) > 64 else repr(name)
        raise ValueError(f"{what} {shown} is not a valid experiment name: 1 to 64 letters, digits, '.', '_' or "
                         f"'-', starting with a letter or digit{reserved}")
    return name


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


RESERVED = ("claims",)  # reports/claims is the claims report
