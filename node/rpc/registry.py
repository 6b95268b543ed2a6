"""RPC methods are declared once, with a decorator; their signature and docstring serve the
dispatcher, parameter checking and `help` alike (the Electrum habit).

The decorator only marks a function; nothing is served until the composition root
(node/service.py) adds each methods module to the one Registry it hands the RPC server, so
importing a module never changes what the node answers."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable

# bitcoind / Namecoin Core error codes
MISC_ERROR = -1
TYPE_ERROR = -3
WALLET_ERROR = -4            # Namecoin uses it for name lookups ("name never existed")
INVALID_ADDRESS_OR_KEY = -5
INVALID_PARAMETER = -8
DATABASE_ERROR = -20
DESERIALIZATION_ERROR = -22
VERIFY_ERROR = -25
VERIFY_REJECTED = -26
VERIFY_ALREADY_IN_CHAIN = -27
CLIENT_IN_INITIAL_DOWNLOAD = -10
CLIENT_NODE_ALREADY_ADDED = -23
CLIENT_NODE_NOT_ADDED = -24
CLIENT_NODE_NOT_CONNECTED = -29
CLIENT_P2P_DISABLED = -9
NAME_INVALID_ENCODING = -1000
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
PARSE_ERROR = -32700


class RPCError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_CHECKS = {"int": lambda v: type(v) is int, "str": lambda v: isinstance(v, str),
           "bool": lambda v: isinstance(v, bool) or v in (0, 1),
           "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable
    signature: inspect.Signature
    doc: str
    is_async: bool
    offload: bool = False        # run off the event loop under a deadline (node/rpc/budget.py)

    @functools.cached_property
    def params(self) -> list[inspect.Parameter]:
        return list(self.signature.parameters.values())[1:]

    @functools.cached_property
    def checks(self) -> dict[str, tuple[str, Callable | None]]:
        """name -> (annotation name, type check or None), worked out once, not per call."""
        out = {}
        for p in self.params:
            ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
            ann = ann.replace(" | None", "")
            out[p.name] = (ann, _CHECKS.get(ann))
        return out


def rpc(name: str | None = None, *, offload: bool = False):
    """Marks fn as an RPC method named `name` (default: its own name) for Registry.add_module.
    `offload`: the caller chooses how much work the call is (a scan, a history), so it runs in
    a worker thread under a deadline, never on the event loop."""
    def mark(fn):
        fn.rpc_method = Method(name or fn.__name__, fn, inspect.signature(fn), inspect.getdoc(fn) or "",
                               inspect.iscoroutinefunction(fn), offload)
        return fn
    return mark


class Registry:
    """The methods one RPC server answers, name -> Method; `help` lists exactly these."""

    def __init__(self):
        self.methods: dict[str, Method] = {}
        self.add(Method("help", self.help, inspect.signature(self.help), inspect.getdoc(self.help) or "",
                        False))

    def add(self, m: Method) -> None:
        if m.name in self.methods:
            raise ValueError(f"RPC method {m.name} registered twice")
        self.methods[m.name] = m

    def add_module(self, module) -> None:
        """Every function `module` itself defines with @rpc (not ones it imports)."""
        for fn in vars(module).values():
            m = getattr(fn, "rpc_method", None)
            if isinstance(m, Method) and fn.__module__ == module.__name__:
                self.add(m)

    def get(self, name: str) -> Method | None:
        return self.methods.get(name)

    def help(self, node, command: str | None = None) -> str:
        """Lists the commands, or explains one."""
        if command is None:
            return "\n".join(usage(m) for _, m in sorted(self.methods.items()))
        m = self.methods.get(command)
        if m is None:
            return f"help: unknown command: {command}"
        return usage(m) + "\n\n" + m.doc


def usage(m: Method) -> str:
    args = []
    for p in list(m.signature.parameters.values())[1:]:
        args.append(p.name if p.default is inspect.Parameter.empty else f"( {p.name}={p.default!r} )")
    return " ".join([m.name, *args])


def bind(m: Method, params) -> tuple[list, dict]:
    """Positional list or named dict -> call arguments; wrong arity is RPC_MISC_ERROR with the
    usage line, as bitcoind answers."""
    plist = m.params
    if params is None:
        params = []
    if isinstance(params, dict):
        names = {p.name for p in plist}
        unknown = set(params) - names
        if unknown:
            raise RPCError(MISC_ERROR, f"Unknown named parameter {sorted(unknown)[0]}")
        args, kwargs = [], dict(params)
        missing = [p.name for p in plist if p.default is inspect.Parameter.empty and p.name not in kwargs]
    elif isinstance(params, list):
        if len(params) > len(plist):
            raise RPCError(MISC_ERROR, f"too many parameters\nusage: {usage(m)}")
        args, kwargs = list(params), {}
        missing = [p.name for p in plist[len(params):] if p.default is inspect.Parameter.empty]
    else:
        raise RPCError(INVALID_REQUEST, "params must be an array or an object")
    if missing:
        raise RPCError(MISC_ERROR, f"missing parameter {missing[0]}\nusage: {usage(m)}")
    # Cheap type checks from annotations, so a wrong JSON type is a clean RPC_TYPE_ERROR.
    checks = m.checks
    for p, value in list(zip(plist, args)) + [(m.signature.parameters[k], v) for k, v in kwargs.items()]:
        if value is None and p.default is None:
            continue
        ann, ok = checks[p.name]
        if ok is not None and not ok(value):
            raise RPCError(TYPE_ERROR, f"Expected type {ann} for {p.name}, got {type(value).__name__}")
    return args, kwargs
