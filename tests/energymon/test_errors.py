"""The exception tree drawn in `energymon.errors`' docstring is the one its classes form."""

from __future__ import annotations

import inspect

from energymon import errors


def drawn_tree() -> list[tuple[int, str]]:
    """(depth, name) of each line of the indented drawing, in order."""
    doc = errors.__doc__ or ""
    lines = doc.split("\n\n    EnergymonError\n", 1)[1].split("\n\n", 1)[0].splitlines()
    tree = [(0, "EnergymonError")]
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        assert (indent - 4) % 2 == 0 and indent > 4, f"bad indentation: {line!r}"
        tree.append(((indent - 4) // 2, line.strip()))
    return tree


def real_tree() -> list[tuple[int, str]]:
    """(depth, name) of every class of the module, each under its base, in source order."""
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if cls.__module__ == errors.__name__
    ]
    classes.sort(key=lambda cls: inspect.getsourcelines(cls)[1])

    def below(parent: type, depth: int) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for cls in classes:
            if cls.__bases__ == (parent,):
                out += [(depth, cls.__name__), *below(cls, depth + 1)]
        return out

    assert errors.EnergymonError.__bases__ == (Exception,)
    return [(0, "EnergymonError"), *below(errors.EnergymonError, 1)]


def test_the_docstring_draws_every_class_under_its_base() -> None:
    assert drawn_tree() == real_tree()
    assert len(real_tree()) == sum(
        1 for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    )
