"""Package attributes imported on first use (PEP 562), as scientific-python's SPEC 1 does.

Importing ``keras_googlenet`` or one of its stage packages loads no Keras or
TensorFlow; ``keras_googlenet.training.train`` imports ``training/run.py`` when
it is first read.
"""

import importlib
import pkgutil
import sys

from keras_googlenet import _moved


def attach(package, path, names, former=None, moved=None):
    """``__getattr__`` and ``__dir__`` for a package whose names are imported on first use.

    Args:
        package: the package's ``__name__``.
        path: its ``__path__``; its submodules are attributes too.
        names: public name -> the submodule, relative to the package, that defines it.
        former: for the stage packages that took the name of a 0.1 module
            (``model``, ``training``, ``export``): that module's new place. Its
            other public names still resolve here, with a `DeprecationWarning`
            that gives their new path.
        moved: for the top level: 0.1's module name -> its new path, relative
            to the package (`_moved.MOVED`); such a name gives the moved
            module, with a `DeprecationWarning`.
    """
    submodules = frozenset(module.name for module in pkgutil.iter_modules(path))

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")  # the import binds it on the package too
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
            vars(sys.modules[package])[name] = value  # later lookups skip __getattr__
            return value
        if moved and name in moved:  # 0.1's `from keras_googlenet import predict`
            _moved.warn(f"{package}.{name}", f"{package}.{moved[name]}")
            module = importlib.import_module(f"{package}.{moved[name]}")
            # bound, as an import would: `from ... import` reads the name twice, and warns once
            vars(sys.modules[package])[name] = module
            return module
        if former and not name.startswith("_"):
            module = importlib.import_module(f"{package}.{former}")
            if hasattr(module, name):
                _moved.warn(f"{package}.{name}", f"{package}.{former}.{name}")
                return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names) | submodules)

    return __getattr__, __dir__
