"""Package attributes imported on first use (PEP 562), as scientific-python's SPEC 1 does.

Importing ``keras_googlenet`` or one of its stage packages loads no Keras or
TensorFlow; ``keras_googlenet.training.train`` imports ``training/run.py`` when
it is first read.
"""

import importlib
import pkgutil
import warnings


def attach(package, path, names, former=None):
    """``__getattr__`` and ``__dir__`` for a package whose names are imported on first use.

    Args:
        package: the package's ``__name__``.
        path: its ``__path__``; its submodules are attributes too.
        names: public name -> the submodule, relative to the package, that defines it.
        former: for the stage packages that took the name of a 0.1 module
            (``model``, ``training``, ``export``): that module's new place. Its
            other public names still resolve here, with a `DeprecationWarning`
            that gives their new path.
    """
    submodules = frozenset(module.name for module in pkgutil.iter_modules(path))

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")  # the import binds it on the package too
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
            vars(importlib.import_module(package))[name] = value  # later lookups skip __getattr__
            return value
        if former and not name.startswith("_"):
            module = importlib.import_module(f"{package}.{former}")
            if hasattr(module, name):
                warnings.warn(
                    f"{package}.{name} moved to {package}.{former}.{name} in keras_googlenet 0.2; "
                    "the old path goes in 0.3 (CHANGELOG.md).",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(names) | submodules)

    return __getattr__, __dir__
