"""ctypes declarations of libbrainstem_client.so (include/brainstem_client.h).

The library is found, in order, at $BRAINSTEM_CLIENT_LIB, next to this package
(brainstem_client/libbrainstem_client.so or its parent directory), then in the repository's build
directories (build*/libbrainstem_client.so, newest first).
"""

import ctypes
import glob
import os

LIB_NAME = "libbrainstem_client.so"

# bs_status codes (include/brainstem_client.h).
OK = 0
INVALID_ARGUMENT = 1
CHECKSUM_MISMATCH = 2
UNAVAILABLE = 3
DEADLINE_EXCEEDED = 4
INTERNAL = 5
UNSUPPORTED = 6
NOT_FOUND = 7
FAILED_PRECONDITION = 8
RESOURCE_EXHAUSTED = 9
BUFFER_TOO_SMALL = 10

CODE_NAMES = {
    OK: "OK", INVALID_ARGUMENT: "INVALID_ARGUMENT", CHECKSUM_MISMATCH: "CHECKSUM_MISMATCH",
    UNAVAILABLE: "UNAVAILABLE", DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED", INTERNAL: "INTERNAL",
    UNSUPPORTED: "UNSUPPORTED", NOT_FOUND: "NOT_FOUND",
    FAILED_PRECONDITION: "FAILED_PRECONDITION", RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
    BUFFER_TOO_SMALL: "BUFFER_TOO_SMALL",
}


class Timings(ctypes.Structure):
    _fields_ = [("total_ns", ctypes.c_uint64), ("request_ns", ctypes.c_uint64),
                ("queue_ns", ctypes.c_uint64), ("compute_ns", ctypes.c_uint64),
                ("response_ns", ctypes.c_uint64), ("server_ns", ctypes.c_uint64)]

    def as_dict(self):
        return {name: int(getattr(self, name)) for name, _ in self._fields_}


def _candidates():
    env = os.environ.get("BRAINSTEM_CLIENT_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, LIB_NAME)
    yield os.path.join(os.path.dirname(here), LIB_NAME)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))  # client/python/pkg -> repo
    found = glob.glob(os.path.join(repo, "build*", LIB_NAME))
    found.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    yield from found


def find_library():
    tried = []
    for path in _candidates():
        tried.append(path)
        if os.path.isfile(path):
            return path
    raise OSError(f"{LIB_NAME} not found (set BRAINSTEM_CLIENT_LIB); tried: {', '.join(tried)}")


def load():
    lib = ctypes.CDLL(find_library())
    c = ctypes
    P = c.c_void_p
    sig = {
        "bs_connect": (c.c_int, [c.c_char_p, c.POINTER(P), c.c_char_p, c.c_size_t]),
        "bs_close": (None, [P]),
        "bs_last_error": (c.c_char_p, [P]),
        "bs_transport": (c.c_char_p, [P]),
        "bs_input_width": (c.c_int32, [P]),
        "bs_output_width": (c.c_int32, [P]),
        "bs_output_name": (c.c_char_p, [P, c.c_int32]),
        "bs_input_feature_count": (c.c_int32, [P]),
        "bs_input_feature": (c.c_int, [P, c.c_int32, c.POINTER(c.c_char_p),
                                       c.POINTER(c.c_int32)]),
        "bs_generation": (c.c_uint64, [P]),
        "bs_predict_raw": (c.c_int, [P, c.POINTER(c.c_float), c.c_int32, c.c_int32,
                                     c.POINTER(c.c_float), c.c_int32, c.c_int, c.c_uint64,
                                     c.POINTER(Timings)]),
        "bs_submit_frame": (c.c_int, [P, c.c_void_p, c.c_uint32, c.c_uint32, c.c_uint32,
                                      c.c_uint32, c.c_uint64, c.c_char_p, c.c_size_t,
                                      c.POINTER(Timings)]),
        "bs_frame_acquire": (c.c_int, [P, c.POINTER(P), c.POINTER(c.POINTER(c.c_uint8)),
                                       c.POINTER(c.c_uint64)]),
        "bs_frame_submit": (c.c_int, [P, c.c_uint32, c.c_uint32, c.c_uint32, c.c_uint32,
                                      c.c_uint64, c.c_char_p, c.c_size_t, c.POINTER(Timings)]),
        "bs_frame_release": (None, [P]),
        "bs_submit_frame_request": (c.c_int, [P, c.c_void_p, c.c_uint32, c.c_uint32, c.c_uint32,
                                              c.c_uint32, c.c_uint64, c.c_uint32, c.c_char_p,
                                              c.c_char_p, c.c_size_t, c.POINTER(Timings)]),
        "bs_frame_submit_request": (c.c_int, [P, c.c_uint32, c.c_uint32, c.c_uint32, c.c_uint32,
                                              c.c_uint64, c.c_uint32, c.c_char_p, c.c_char_p,
                                              c.c_size_t, c.POINTER(Timings)]),
        "bs_set_test_option": (c.c_int, [P, c.c_char_p, c.c_int64]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
