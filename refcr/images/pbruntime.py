"""What the generated refcr.pb modules need of the protobuf runtime, without
its Python layer.

protoc's `*_pb2.py` import `google.protobuf.descriptor_pool`, `builder`,
`symbol_database` and `runtime_version`; those import the pure-Python message
implementation (python_message, text_format, well_known_types, datetime,
decoders...) even when the upb C extension does all the work: about 40 ms of
CPU per cold command, a fifth of a trivial dump.  setup.py's build_proto
rewrites the generated imports to this module, which builds the same module
contents (descriptors, message classes, enum wrappers, enum values) straight
from upb's default pool.  Message classes are upb's (`MessageMeta` with
`google.protobuf.message.Message` as base, as cpp_message makes them), in
the same default pool, so the rest of the protobuf library (json_format,
text_format) works on them when something imports it.

Without upb (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, or a runtime
without the extension) it hands out the library's own functions unchanged.
"""
from __future__ import annotations

import os

_upb = None
if os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "upb") == "upb":
    try:
        from google._upb import _message as _upb
    except ImportError:     # pragma: no cover - a runtime without the extension
        _upb = None

if _upb is None:    # pragma: no cover - the library's own path
    from google.protobuf import descriptor_pool as _pool_mod
    from google.protobuf import runtime_version as _rv
    from google.protobuf import symbol_database as _sdb
    from google.protobuf.descriptor import _USE_C_DESCRIPTORS  # noqa: F401
    from google.protobuf.internal import builder as _builder

    Default = _pool_mod.Default
    BuildMessageAndEnumDescriptors = _builder.BuildMessageAndEnumDescriptors
    BuildTopDescriptorsAndMessages = _builder.BuildTopDescriptorsAndMessages
    ValidateProtobufRuntimeVersion = _rv.ValidateProtobufRuntimeVersion
    Domain = _rv.Domain
    _symbol_default = _sdb.Default
    from google.protobuf.descriptor import FieldDescriptor
else:
    from google.protobuf import message as _message
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

    _USE_C_DESCRIPTORS = True
    FieldDescriptor = _upb.FieldDescriptor      # the type constants validate.py reads

    class GeneratedProtocolMessageType(_upb.MessageMeta):
        """The metaclass cpp_message gives generated classes (same key)."""

        _DESCRIPTOR_KEY = "DESCRIPTOR"

    class Domain:
        """runtime_version.Domain's one member the generated code names."""

        PUBLIC = 1

    def ValidateProtobufRuntimeVersion(*_args: object) -> None:
        """pyproject.toml pins the runtime the generated code was made for."""

    def Default():  # noqa: N802 - the name the generated code calls
        return _upb.default_pool

    def _symbol_default() -> None:
        return None

    def BuildMessageAndEnumDescriptors(file_des, module: dict) -> None:  # noqa: N802
        """The module's `_NAME` descriptor globals (as builder's)."""
        def nested(msg_des, prefix: str) -> None:
            for name, sub in msg_des.nested_types_by_name.items():
                module[prefix + name.upper()] = sub
                nested(sub, prefix + name.upper() + "_")
            for enum_des in msg_des.enum_types:
                module[prefix + enum_des.name.upper()] = enum_des

        for name, msg_des in file_des.message_types_by_name.items():
            module["_" + name.upper()] = msg_des
            nested(msg_des, "_" + name.upper() + "_")

    def _build_message(msg_des, prefix: str, module_name: str):
        body = {name: _build_message(sub, prefix + msg_des.name + ".", module_name)
                for name, sub in msg_des.nested_types_by_name.items()}
        body.update(DESCRIPTOR=msg_des, __module__=module_name, __qualname__=prefix + msg_des.name)
        return GeneratedProtocolMessageType(msg_des.name, (_message.Message,), body)

    def BuildTopDescriptorsAndMessages(file_des, module_name: str, module: dict) -> None:  # noqa: N802
        """Enums, their values, extensions, services and message classes (as builder's)."""
        for name, enum_des in file_des.enum_types_by_name.items():
            module["_" + name.upper()] = enum_des
            module[name] = EnumTypeWrapper(enum_des)
            for value in enum_des.values:
                module[value.name] = value.number
        for name, ext in file_des.extensions_by_name.items():
            module[name.upper() + "_FIELD_NUMBER"] = ext.number
            module[name] = ext
        for name, service in file_des.services_by_name.items():
            module["_" + name.upper()] = service
        for name, msg_des in file_des.message_types_by_name.items():
            module[name] = _build_message(msg_des, "", module_name)


class _SymbolDatabase:
    """symbol_database.Default() as the generated code uses it: the result is
    only kept in `_sym_db`; the real one is made when first asked for."""

    def __getattr__(self, name: str):
        from google.protobuf import symbol_database
        return getattr(symbol_database.Default(), name)


def symbol_default():
    """symbol_database.Default() for the generated modules."""
    return _symbol_default() or _SymbolDatabase()
