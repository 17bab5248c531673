"""icebox's runtime client for Lambda's Python runtimes.

The sandbox runs `pythonX.Y -u /var/runtime/bootstrap.py`. This file loads
the handler named by _HANDLER once (the init phase) and then serves events
from the Runtime API (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01) until the
environment is destroyed, with Lambda's conventions:

  - handler `module.function`, dotted packages allowed (`pkg.sub.mod.fn`);
  - /var/task, the layers' /opt/python, the standard library, the SDK
    icebox provides (/var/runtime/site-packages: boto3) and then the
    interpreter's own site-packages on sys.path, in that order;
  - `context` with Lambda's attributes and get_remaining_time_in_millis();
  - results JSON-encoded; exceptions, init failures and encoding failures
    reported with Lambda's error types and body
    {"errorMessage", "errorType", "requestId", "stackTrace"};
  - print() writes lines to the function's log; the root logger writes
    one record per call, in Lambda's text or JSON format
    (AWS_LAMBDA_LOG_FORMAT), framed on _LAMBDA_TELEMETRY_LOG_FD.

Only the standard library is used, and only what a cold start needs is
imported up front, since every import is paid by every cold start: `json`
and `socket` alone would cost more than the interpreter's own start (json
compiles regular expressions at import; socket pulls in enum and selectors),
so this client talks to their C halves, _json and _socket, which the json
and socket modules themselves are built on. `logging` is imported only when
the function's code imports it, and configured at that moment.
"""

import _json
import _socket
import os
import sys
import time

TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))

# The request id of the invocation in progress, for log records.
_request_id = ""

# Lambda's log settings (LoggingConfig). Records go to the telemetry
# descriptor when Lambda names one, one frame per record, so a multi-line
# message stays one log event; the variable is removed so that processes
# the function starts write plain lines.
_JSON_LOGS = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
_TELEMETRY_FD = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
_TELEMETRY_FD = int(_TELEMETRY_FD) if _TELEMETRY_FD and _TELEMETRY_FD.isdigit() else None


class Fault(Exception):
    """A failure Lambda reports with one of its Runtime.* error types."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


# --- Runtime API -----------------------------------------------------------


class RuntimeAPI:
    """A keep-alive HTTP/1.1 client for the Runtime API: one connection,
    Content-Length (or chunked) bodies, a handful of headers."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.address = (host, int(port))
        self.host = address
        self.sock = None
        self.buf = bytearray()  # received, not yet consumed

    def next(self):
        """Blocks until the next event: (request id, headers, body)."""
        status, headers, body = self.request("GET", "/runtime/invocation/next")
        if status != 200:
            raise ConnectionError("GET next: HTTP %d: %r" % (status, body[:200]))
        return headers.get("lambda-runtime-aws-request-id", ""), headers, body

    def respond(self, request_id, payload, content_type):
        self.post("/runtime/invocation/%s/response" % request_id, payload, content_type)

    def fail(self, request_id, error):
        self.post("/runtime/invocation/%s/error" % request_id, to_json(error),
                  "application/json", error["errorType"])

    def init_error(self, error):
        self.post("/runtime/init/error", to_json(error), "application/json", error["errorType"])

    def post(self, path, body, content_type, error_type=None):
        headers = "Content-Type: %s\r\n" % content_type
        if error_type:
            headers += "Lambda-Runtime-Function-Error-Type: %s\r\n" % error_type
        try:
            self.request("POST", path, body, headers)
        except OSError as e:
            # The API has the outcome once it read the body (an oversized one
            # it answers and closes early); the next GET reconnects.
            print("icebox runtime: POST %s: %s" % (path, e), file=sys.stderr)
            self.close()

    def request(self, method, path, body=b"", headers=""):
        if self.sock is None:
            self.sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            self.sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self.sock.connect(self.address)
        head = ("%s /2018-06-01%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n"
                % (method, path, self.host, len(body), headers)).encode("latin-1")
        try:
            if len(body) < 65536:
                self.sock.sendall(head + body)  # one segment for the usual small body
            else:
                self.sock.sendall(head)
                self.sock.sendall(body)
        except OSError:
            pass  # the server may have answered before reading everything: read it
        try:
            status, resp_headers, resp_body = self.read_response()
        except OSError:
            self.close()
            raise
        if resp_headers.get("connection", "").lower() == "close":
            self.close()
        return status, resp_headers, resp_body

    def read_response(self):
        status = int(self.read_line().split(None, 2)[1])
        headers = {}
        while True:
            line = self.read_line()
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.read_line().split(b";")[0], 16)
                if size == 0:
                    while self.read_line() not in (b"\r\n", b"\n"):
                        pass  # trailers
                    return status, headers, b"".join(chunks)
                chunks.append(self.read_exact(size))
                self.read_line()
        return status, headers, self.read_exact(int(headers.get("content-length") or 0))

    def read_line(self):
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                return self.take(end + 1)
            self.receive()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.receive()
        return self.take(n)

    def take(self, n):
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def receive(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the Runtime API closed the connection")
        self.buf += data

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self.buf.clear()


# --- JSON ------------------------------------------------------------------
#
# json.loads and json.dumps are thin layers over these accelerators; used
# directly with json's default settings they parse and write exactly what
# json does (same separators, float repr, NaN handling, escaping).


class _DecodeOptions:
    """json.loads' defaults, read by _json's scanner."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan_once = _json.make_scanner(_DecodeOptions())

# Lambda's python3.12 runtime alone writes non-ASCII characters unescaped.
if os.environ.get("AWS_EXECUTION_ENV") == "AWS_Lambda_python3.12":
    _encode_string = _json.encode_basestring
else:
    _encode_string = _json.encode_basestring_ascii


_NONCE = os.urandom(8).hex()


def to_json(obj):
    """json.dumps(obj) as UTF-8. Decimals (DynamoDB's numbers) are written
    with their exact digits, as Lambda's encoder writes them: the C encoder
    cannot emit raw text, so each becomes a placeholder string (a NUL, which
    JSON always escapes, and a nonce no data can guess) replaced afterwards."""
    decimals = []

    def default(o):
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            decimals.append(str(o))
            return "\0%s%d" % (_NONCE, len(decimals) - 1)
        raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)

    # A fresh encoder per call: its markers dict (circular reference
    # detection) is left dirty by a failed encode.
    encode = _json.make_encoder({}, default, _encode_string, None, ": ", ", ", False, False, True)
    text = "".join(encode(obj, 0))
    for i, digits in enumerate(decimals):
        text = text.replace('"\\u0000%s%d"' % (_NONCE, i), digits, 1)
    return text.encode("utf-8")


def from_json(data):
    """json.loads(data) for UTF-8 text or bytes."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    text = text.strip(" \t\n\r")
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration as stop:
        raise ValueError("Expecting value: char %d" % stop.value) from None
    if end != len(text):
        raise ValueError("Extra data: char %d" % end)
    return obj


def encode_result(result):
    """The response body and its content type; bytes go out as they are."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return to_json(result), "application/json"
    except Exception as e:
        raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % e)


def decode_event(body, content_type):
    if content_type and content_type != "application/json":
        return body
    try:
        return from_json(body)
    except Exception as e:
        raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)


def parse_json_header(value, what):
    try:
        return from_json(value)
    except Exception as e:
        raise Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (what, e))


# --- context ---------------------------------------------------------------


def _set_fields(obj, values):
    for name in obj.__slots__:
        setattr(obj, name, values.get(name))
    return obj


def _slots_repr(obj):
    fields = ",".join("%s=%s" % (n, getattr(obj, n)) for n in obj.__slots__)
    return "%s([%s])" % (type(obj).__name__, fields)


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")
    __repr__ = _slots_repr


class ClientContext:
    __slots__ = ("custom", "env", "client")
    __repr__ = _slots_repr


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")
    __repr__ = _slots_repr


class LambdaContext:
    """The handler's `context`, attribute for attribute as on Lambda (where
    memory_limit_in_mb, read from the environment, is a string too)."""

    # Constant for an environment: read once.
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")

    def __init__(self, request_id, headers):
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        self.client_context = None
        raw = headers.get("lambda-runtime-client-context")
        if raw:
            cc = parse_json_header(raw, "Client Context")
            if isinstance(cc, dict):
                self.client_context = _set_fields(ClientContext(), cc)
                if isinstance(self.client_context.client, dict):
                    self.client_context.client = _set_fields(Client(), self.client_context.client)
        identity = {}
        raw = headers.get("lambda-runtime-cognito-identity")
        if raw:
            parsed = parse_json_header(raw, "Cognito Identity")
            if isinstance(parsed, dict):
                identity = {"cognito_identity_id": parsed.get("cognitoIdentityId"),
                            "cognito_identity_pool_id": parsed.get("cognitoIdentityPoolId")}
        self.identity = _set_fields(CognitoIdentity(), identity)

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        names = ("aws_request_id", "log_group_name", "log_stream_name", "function_name",
                 "memory_limit_in_mb", "function_version", "invoked_function_arn",
                 "client_context", "identity")
        return "LambdaContext([%s])" % ",".join("%s=%s" % (n, getattr(self, n)) for n in names)


# --- errors ----------------------------------------------------------------


def error_body(error_type, message, stack_trace, request_id=""):
    return {"errorMessage": message, "errorType": error_type,
            "requestId": request_id, "stackTrace": stack_trace}


def exception_body(exc, request_id=""):
    """Lambda's body for an exception the function raised: its class name,
    str(), and the frames from the function's code down, without ours."""
    if isinstance(exc, Fault):
        return error_body(exc.error_type, exc.message, exc.stack_trace, request_id)
    import traceback  # only failing calls pay for it

    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename == __file__:
        frames = frames[1:]
    trace = []
    for f in frames:
        entry = '  File "%s", line %s, in %s\n' % (f.filename, f.lineno, f.name)
        if f.line:
            entry += "    %s\n" % f.line.strip()
        trace.append(entry)
    return error_body(type(exc).__name__, str(exc), trace, request_id)


def write_record(message, level=0):
    """Writes one log record: a frame on the telemetry descriptor (type
    0xA55A0000 | level << 2 | JSON 2 or text 3, length, microseconds,
    message), else a line on stdout. level: 0 unset, 2 DEBUG … 6 FATAL."""
    if _TELEMETRY_FD is None:
        sys.stdout.write(message if message.endswith("\n") else message + "\n")
        return
    data = message.encode("utf-8", "replace")
    kind = 0xA55A0002 if _JSON_LOGS else 0xA55A0003
    head = ((kind | level << 2).to_bytes(4, "big") + len(data).to_bytes(4, "big")
            + (time.time_ns() // 1000).to_bytes(8, "big"))
    view = memoryview(head + data)
    while view:
        view = view[os.write(_TELEMETRY_FD, view):]


def timestamp(created=None, millis=True):
    t = time.time() if created is None else created
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return text + (".%03dZ" % (int(t * 1000) % 1000) if millis else "Z")


_ERROR = 5


def log_error(body):
    """Writes an error the function raised as Lambda does: one log event
    starting with [ERROR] and the traceback, or under the JSON format one
    record with its type, message and stack trace."""
    if _JSON_LOGS:
        record = {"timestamp": timestamp(millis=False), "log_level": "ERROR", "errorMessage": body["errorMessage"],
                  "errorType": body["errorType"], "requestId": body.get("requestId", ""),
                  "stackTrace": body["stackTrace"]}
        write_record(to_json(record).decode("utf-8"), _ERROR)
        return
    lines = ["[ERROR] %s: %s" % (body["errorType"], body["errorMessage"]),
             "Traceback (most recent call last):"]
    for entry in body["stackTrace"]:
        lines.extend(entry.splitlines())
    if _TELEMETRY_FD is not None:
        write_record("\n".join(lines), _ERROR)
        return
    # On stdout every line would be an event: lines are joined by \r, and
    # indentation kept as no-break spaces, as Lambda's client does there.
    for i, line in enumerate(lines):
        stripped = line.lstrip(" ")
        lines[i] = "\u00a0" * (len(line) - len(stripped)) + stripped
    write_record("\r".join(lines))


# --- handler ---------------------------------------------------------------


def load_handler(spec):
    """Imports the handler's module (the init phase) and returns the handler."""
    modname, dot, fname = spec.rpartition(".")
    if not dot or not modname:
        # Lambda's message, which quotes Python's own unpacking error.
        raise Fault("Runtime.MalformedHandlerName",
                    "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % spec)
    if modname.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict",
                    "Cannot use built-in module %s as a handler module" % modname)
    try:
        name = modname.replace("/", ".")  # Lambda accepts dir/module.handler too
        __import__(name)
        module = sys.modules[name]
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))


def invoke(api, handler, request_id, headers, body):
    global _request_id
    _request_id = request_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        context = LambdaContext(request_id, headers)
        event = decode_event(body, headers.get("content-type"))
        payload, content_type = encode_result(handler(event, context))
    except Exception as e:
        error = exception_body(e, request_id)
        log_error(error)
        api.fail(request_id, error)
    else:
        api.respond(request_id, payload, content_type)


# --- logging ---------------------------------------------------------------


# Record attributes a JSON record leaves out; any other (extra=…) is a key.
_RESERVED_ATTRS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "taskName", "aws_request_id"))


def configure_logging(logging):
    """Gives the root logger Lambda's handler and format: text lines
    "[LEVEL]\ttime\trequestId\tmessage", or JSON records with timestamp,
    level, message, logger and requestId (exceptions add errorType,
    errorMessage, stackTrace and location; extra=… keys are kept)."""

    def frame_level(record):
        return min(6, max(0, record.levelno // 10 + 1)) if record.levelno else 0

    class TextFormatter(logging.Formatter):
        def __init__(self):
            super().__init__("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                             "%Y-%m-%dT%H:%M:%S")
            self.converter = time.gmtime

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            level = min(50, max(0, record.levelno)) // 10 * 10
            out = {"timestamp": timestamp(record.created), "level": logging.getLevelName(level),
                   "message": record.getMessage(), "logger": record.name}
            if record.aws_request_id:
                out["requestId"] = record.aws_request_id
            if record.exc_info:
                import traceback

                out["errorType"] = record.exc_info[0].__name__
                out["errorMessage"] = str(record.exc_info[1])
                out["stackTrace"] = traceback.format_tb(record.exc_info[2])
                out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            for key, value in record.__dict__.items():
                if key not in _RESERVED_ATTRS and key not in out:
                    out[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
            return to_json(out).decode("utf-8")

    class LambdaLogHandler(logging.Handler):
        def emit(self, record):
            record.aws_request_id = _request_id
            try:
                write_record(self.format(record), frame_level(record))
            except Exception:
                self.handleError(record)

    handler = LambdaLogHandler()
    handler.setFormatter(JsonFormatter() if _JSON_LOGS else TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel({"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))


class ConfigureLoggingOnImport:
    """A sys.meta_path finder that configures the root logger as soon as
    anything imports logging: the function's code sees Lambda's setup, and
    functions that never log don't pay for importing logging at cold start."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None and spec.loader is not None:
                spec.loader = ConfiguringLoader(spec.loader)
                return spec
        return None


class ConfiguringLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        configure_logging(module)

    def __getattr__(self, name):  # get_data, get_filename… of the real loader
        return getattr(self.loader, name)


# --- main ------------------------------------------------------------------


def main():
    # The function's code and layers come first, then the standard library
    # (after /var/runtime when PYTHONPATH names it, as Lambda sets it), then
    # the SDK icebox provides (/var/runtime/site-packages: boto3), then the
    # interpreter's own site-packages. So a bundled
    # boto3 wins, and the host's packages never shadow the pinned SDK.
    # sys.path[0] is this script's directory.
    version = "python%d.%d" % sys.version_info[:2]
    sys.path[0:1] = [TASK_ROOT, "/opt/python/lib/%s/site-packages" % version, "/opt/python"]
    sdk = os.path.join(RUNTIME_DIR, "site-packages")
    if os.path.isdir(sdk):
        at = next((i for i, p in enumerate(sys.path) if i >= 3 and p.endswith(("site-packages", "dist-packages"))), len(sys.path))
        sys.path.insert(at, sdk)
    if RUNTIME_DIR not in sys.path:
        sys.path.append(RUNTIME_DIR)  # else PYTHONPATH put it before the standard library, as on Lambda
    if "logging" in sys.modules:
        configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, ConfigureLoggingOnImport())

    api = RuntimeAPI(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        error = exception_body(e)
        log_error(error)
        api.init_error(error)
        sys.exit(1)

    while True:
        try:
            request_id, headers, body = api.next()
        except OSError:
            # The Runtime API is gone: icebox is shutting the environment
            # down, which is no error of the function's (Lambda's runtimes
            # write nothing then either).
            sys.exit(0)
        invoke(api, handler, request_id, headers, body)


if __name__ == "__main__":
    main()
