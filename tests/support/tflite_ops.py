"""The builtin operators of a .tflite file, by name, read from its flatbuffer (helpers for the tests)."""

import functools


@functools.cache
def _builtin_names():
    from tensorflow.lite.python import schema_py_generated as schema

    return {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def op_name(operator_code):
    """The name of an operator code (``"CONV_2D"``): old files keep codes below 127 in ``deprecatedBuiltinCode``."""
    return _builtin_names()[max(operator_code.builtinCode, operator_code.deprecatedBuiltinCode)]


def read_model(path):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model(str(path))


def op_names(path):
    """The set of builtin operator names that a .tflite file uses."""
    return {op_name(code) for code in read_model(path).operatorCodes}
