"""Python client for brainstem: `Client("shm://default" | "http://127.0.0.1:8080")`.

A thin ctypes layer over libbrainstem_client.so (the C ABI, include/brainstem_client.h); there is
no compiled extension. Both transports give the same actions for the same observations: inputs
travel as float32 either way and the server preprocesses them.

    from brainstem_client import Client
    with Client("shm://default") as c:
        actions = c.predict([{"speed": 30.0, "steering": 0.0, "sensors": [0.0] * 8}])
        # -> [{"throttle": 0.61, "brake": 0.0, "steer": 0.02}]

Action names come from the server's /metadata over http. A shm region carries no names, so over
shm they are throttle, brake, steer when the model has 3 actions (the CarlaRL action space),
else a0..aN-1; the inputs are taken to be the CarlaRL layout speed, steering, sensors.

Thread-safety: one Client may be used from many threads at once (the library releases the GIL
during each call; shm calls claim separate slots). close() must come last.
"""

import ctypes

from . import _ffi
from ._ffi import Timings

__all__ = ["Client", "ClientError", "InvalidArgument", "ChecksumMismatch", "Unavailable",
           "DeadlineExceeded", "Unsupported", "FORMATS", "REQUESTS"]

FORMATS = {"BGRA": 1, "RGBA": 2, "RGB": 3, "GRAY": 4}
_BYTES_PER_PIXEL = {1: 4, 2: 4, 3: 3, 4: 1}
# What the server does with a frame (docs/shm-protocol.md section 3).
REQUESTS = {"verify": 0, "text": 1, "find": 2, "region": 3}


def _request(request, query):
    """(kind number, query bytes or None) for submit_frame's `request` and `query`."""
    kind = REQUESTS.get(request) if isinstance(request, str) else request
    if kind not in REQUESTS.values():
        raise ValueError(f"request must be one of {sorted(REQUESTS)} (or 0..3), got {request!r}")
    if kind == REQUESTS["region"] and not isinstance(query, str) and query is not None:
        query = ",".join(str(int(v)) for v in query)  # (x, y, w, h)
    if kind in (REQUESTS["find"], REQUESTS["region"]):
        if not query:
            raise ValueError("query is required for request 'find' and 'region'")
        return kind, query.encode()
    return kind, None

_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = _ffi.load()
    return _lib


class ClientError(Exception):
    """A failed call: `code` is the bs_status number, `code_name` its name."""

    def __init__(self, code, message):
        self.code = code
        self.code_name = _ffi.CODE_NAMES.get(code, str(code))
        super().__init__(f"{self.code_name}: {message}")


class InvalidArgument(ClientError):
    pass


class ChecksumMismatch(ClientError):
    pass


class Unavailable(ClientError):
    """Retryable: queue full, server stopping or restarted. Over shm the next call reconnects."""


class DeadlineExceeded(ClientError):
    pass


class Unsupported(ClientError):
    pass


_ERRORS = {_ffi.INVALID_ARGUMENT: InvalidArgument, _ffi.CHECKSUM_MISMATCH: ChecksumMismatch,
           _ffi.UNAVAILABLE: Unavailable, _ffi.DEADLINE_EXCEEDED: DeadlineExceeded,
           _ffi.UNSUPPORTED: Unsupported}


def _raise(code, message):
    raise _ERRORS.get(code, ClientError)(code, message)


def _is_numpy(value):
    return type(value).__module__ == "numpy" and hasattr(value, "ctypes")


def _field(obs, name):
    if isinstance(obs, dict):
        return obs[name]
    return getattr(obs, name)


class FrameBuffer:
    """A frame slot claimed for writing in place (zero copy); see Client.frame_buffer()."""

    def __init__(self, client, handle, pixels, capacity):
        self._client = client
        self._handle = handle
        self._pixels = pixels
        self.capacity = capacity

    def array(self):
        """A writable numpy uint8 view of the slot's `capacity` bytes of shared memory."""
        import numpy as np
        if self._handle is None:
            raise ValueError("frame buffer already submitted or released")
        return np.ctypeslib.as_array(self._pixels, shape=(self.capacity,))

    def memoryview(self):
        """A writable memoryview of the slot's bytes."""
        if self._handle is None:
            raise ValueError("frame buffer already submitted or released")
        return memoryview((ctypes.c_uint8 * self.capacity).from_address(
            ctypes.addressof(self._pixels.contents))).cast("B")

    def submit(self, width, height, format="BGRA", stride=None, timestamp_ns=0,
               request="verify", query=None):
        """Hands the frame to the server and returns its answer (as Client.submit_frame)."""
        if self._handle is None:
            raise ValueError("frame buffer already submitted or released")
        fmt = self._client._format(format)
        stride = stride if stride is not None else width * _BYTES_PER_PIXEL[fmt]
        kind, query_bytes = _request(request, query)
        handle, self._handle = self._handle, None
        result = ctypes.create_string_buffer(4096)
        t = Timings()
        lib = _library()
        code = lib.bs_frame_submit_request(handle, width, height, stride, fmt, timestamp_ns, kind,
                                           query_bytes, result, len(result), ctypes.byref(t))
        if code != _ffi.OK:
            _raise(code, lib.bs_last_error(None).decode(errors="replace"))
        return {"result": result.value.decode(errors="replace"), "timings": t.as_dict()}

    def release(self):
        if self._handle is not None:
            _library().bs_frame_release(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class Client:
    """A connection to a brainstem server over shm or http (see the module docstring)."""

    def __init__(self, url="shm://default"):
        lib = _library()
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        code = lib.bs_connect(url.encode(), ctypes.byref(handle), err, len(err))
        if code != _ffi.OK:
            _raise(code, err.value.decode(errors="replace"))
        self._lib = lib
        self._h = handle
        self.url = url
        self.transport = lib.bs_transport(handle).decode()
        self.input_width = lib.bs_input_width(handle)
        self.output_width = lib.bs_output_width(handle)
        self.output_names = [lib.bs_output_name(handle, i).decode()
                             for i in range(self.output_width)]
        self.inputs = []
        for i in range(lib.bs_input_feature_count(handle)):
            name = ctypes.c_char_p()
            size = ctypes.c_int32()
            lib.bs_input_feature(handle, i, ctypes.byref(name), ctypes.byref(size))
            self.inputs.append((name.value.decode(), size.value))
        self.last_timings = None

    # --- life cycle ----------------------------------------------------------------------

    def close(self):
        if getattr(self, "_h", None):
            self._lib.bs_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def generation(self):
        """The server's generation (shm): changes when the server restarts. 0 over http."""
        return self._lib.bs_generation(self._handle())

    def _handle(self):
        if not self._h:
            raise ValueError("client is closed")
        return self._h

    def _check(self, code):
        if code != _ffi.OK:
            _raise(code, self._lib.bs_last_error(self._h).decode(errors="replace"))

    def _format(self, format):
        if isinstance(format, int):
            if format not in _BYTES_PER_PIXEL:
                raise ValueError(f"unknown pixel format {format}")
            return format
        try:
            return FORMATS[format.upper()]
        except KeyError:
            raise ValueError(f"format must be one of {sorted(FORMATS)}, got {format!r}") from None

    # --- policy steps --------------------------------------------------------------------

    def _flatten(self, observations):
        """Raw float32 rows (a ctypes array) in the model's column order, and the row count."""
        n = len(observations)
        width = self.input_width
        buf = (ctypes.c_float * (n * width))()
        k = 0
        for r, obs in enumerate(observations):
            for name, size in self.inputs:
                value = _field(obs, name)
                if size == 1 and name != "sensors":
                    buf[k] = float(value)
                    k += 1
                else:
                    values = list(value)
                    if len(values) != size:
                        raise InvalidArgument(
                            _ffi.INVALID_ARGUMENT,
                            f"observations[{r}].{name}: must hold exactly {size} values for "
                            f"this model (got {len(values)})")
                    for v in values:
                        buf[k] = float(v)
                        k += 1
        return buf, n

    def _predict_raw_ptr(self, ptr, n, deterministic, seed):
        out = (ctypes.c_float * (n * self.output_width))()
        t = Timings()
        code = self._lib.bs_predict_raw(self._handle(), ptr, n, self.input_width, out, len(out),
                                        1 if deterministic else 0, seed or 0, ctypes.byref(t))
        self._check(code)
        self.last_timings = t.as_dict()
        return out

    def predict(self, observations, deterministic=True, seed=None):
        """Actions for `observations`: a list of dicts (or objects) with speed, steering,
        sensors, or a numpy array of raw rows [n, input_width]. Returns a list of dicts
        {action name: value}, in order. `seed` (stochastic calls) makes sampling reproducible;
        None or 0 lets the client/server pick one. Timings of the call: `last_timings`."""
        if _is_numpy(observations):
            out = self.predict_raw(observations, deterministic, seed)
            return [dict(zip(self.output_names, map(float, row))) for row in out.tolist()]
        if isinstance(observations, dict):
            raise TypeError("predict takes a list of observations; wrap a single one in [...]")
        buf, n = self._flatten(observations)
        if n == 0:
            raise InvalidArgument(_ffi.INVALID_ARGUMENT, "predict: need at least one observation")
        out = self._predict_raw_ptr(buf, n, deterministic, seed)
        names, w = self.output_names, self.output_width
        return [{names[a]: out[r * w + a] for a in range(w)} for r in range(n)]

    def predict_raw(self, rows, deterministic=True, seed=None):
        """The array path: `rows` is array-like [n, input_width] of raw feature values in the
        model's column order; returns a float32 numpy array [n, output_width]."""
        import numpy as np
        arr = np.ascontiguousarray(rows, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.input_width:
            raise InvalidArgument(_ffi.INVALID_ARGUMENT,
                                  f"rows must have shape [n, {self.input_width}], got "
                                  f"{list(arr.shape)}")
        n = arr.shape[0]
        out = self._predict_raw_ptr(arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n,
                                    deterministic, seed)
        return np.frombuffer(out, dtype=np.float32).reshape(n, self.output_width).copy()

    # --- frames --------------------------------------------------------------------------

    def submit_frame(self, data, width, height, format="BGRA", stride=None, timestamp_ns=0,
                     request="verify", query=None):
        """Hands one image to the server and returns {"result": the server's text answer,
        "timings": {...}}. `data` is bytes, bytearray, memoryview or a numpy array holding at
        least stride*height bytes. `request`: "verify" (shm only: checksum and acknowledge),
        "text" (OCR), "find" (`query` = the text to find) or "region" (`query` = (x, y, w, h)
        or "x,y,w,h"). Over shm the frame is copied once into a frame slot and OCR answers are
        compact JSON; over http it is posted as raw pixels to /v1/ocr[/find] and the answer is
        that route's JSON. See ocr_text / find_text / read_region for parsed answers."""
        fmt = self._format(format)
        kind, query_bytes = _request(request, query)
        stride = stride if stride is not None else width * _BYTES_PER_PIXEL[fmt]
        needed = stride * height
        keep = data
        if _is_numpy(data):
            import numpy as np
            keep = np.ascontiguousarray(data)
            size = keep.nbytes
            ptr = ctypes.c_void_p(keep.ctypes.data)
        else:
            if isinstance(data, memoryview):
                keep = data.tobytes() if data.readonly or not data.c_contiguous else data
            if isinstance(keep, (bytearray, memoryview)):
                size = len(memoryview(keep).cast("B"))
                ptr = ctypes.c_void_p(ctypes.addressof((ctypes.c_char * size).from_buffer(keep)))
            elif isinstance(keep, bytes):
                size = len(keep)
                ptr = ctypes.cast(ctypes.c_char_p(keep), ctypes.c_void_p)
            else:
                raise TypeError("data must be bytes, bytearray, memoryview or a numpy array")
        if size < needed:
            raise InvalidArgument(_ffi.INVALID_ARGUMENT,
                                  f"frame: {size} bytes given, stride*height = {needed}")
        result = ctypes.create_string_buffer(4096)
        t = Timings()
        if self.transport == "http":
            # /v1/ocr answers carry every line and box: more than a slot's 3 KiB.
            result = ctypes.create_string_buffer(1 << 20)
        code = self._lib.bs_submit_frame_request(self._handle(), ptr, width, height, stride, fmt,
                                                 timestamp_ns, kind, query_bytes, result,
                                                 len(result), ctypes.byref(t))
        del keep
        self._check(code)
        return {"result": result.value.decode(errors="replace"), "timings": t.as_dict()}

    def ocr_text(self, data, width, height, format="BGRA", stride=None):
        """OCR of one screen image: the server's answer as a dict (its "text" in reading
        order; see docs/perception.md)."""
        return self._ocr(data, width, height, format, stride, "text", None)

    def find_text(self, data, width, height, query, format="BGRA", stride=None):
        """Boxes of `query` on the screen, best first: the answer's "matches", each with
        "text", "box" [x, y, w, h] and "center" [x, y] (where to click)."""
        return self._ocr(data, width, height, format, stride, "find", query)

    def read_region(self, data, width, height, box, format="BGRA", stride=None):
        """The text inside `box` = (x, y, w, h)."""
        return self._ocr(data, width, height, format, stride, "region", box)

    def _ocr(self, data, width, height, format, stride, request, query):
        import json
        answer = self.submit_frame(data, width, height, format=format, stride=stride,
                                   request=request, query=query)
        return json.loads(answer["result"])

    def frame_buffer(self):
        """Claims a frame slot to write in place (true zero copy): use as a context manager,
        fill `.array()` (numpy) or `.memoryview()`, then `.submit(width, height, format)`."""
        handle = ctypes.c_void_p()
        pixels = ctypes.POINTER(ctypes.c_uint8)()
        capacity = ctypes.c_uint64()
        code = self._lib.bs_frame_acquire(self._handle(), ctypes.byref(handle),
                                          ctypes.byref(pixels), ctypes.byref(capacity))
        self._check(code)
        return FrameBuffer(self, handle, pixels, capacity.value)

    # --- tests ---------------------------------------------------------------------------

    def _set_test_option(self, name, value):
        """FOR TESTS ONLY: e.g. ("corrupt_after_checksum", 1) (include/brainstem_client.h)."""
        self._check(self._lib.bs_set_test_option(self._handle(), name.encode(), int(value)))
