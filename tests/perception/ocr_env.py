"""A known X screen for the perception tests and benchmark: Xvfb, xterm windows showing known
text at 11-16 px (DejaVu Sans Mono), and a UI-like page (ImageMagick: dark and light buttons,
a title bar) shown with ImageMagick's `display`. Also: the real server, raw capture through
`brainstem capture`, HTTP helpers and the character error rate."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

XTERM_LINES = {
    11: ["alpha bravo charlie delta echo", "invoice 4471 total 1289.50 EUR"],
    12: ["The quick brown fox jumps over the lazy dog", "Settings Save Cancel 12345"],
    13: ["brainstem perception test line", "git commit -m fix parser bug"],
    14: ["Open File Edit View Help", "download report for March 2024"],
    16: ["Terminal ready: press Enter", "username admin password hidden"],
}
PAGE_TEXT = {
    "title": "Order Review",            # light text on a dark title bar
    "label1": "Shipping address",
    "label2": "Payment method: credit card",
    "button_dark": "Place order",       # light on dark button
    "button_light": "Back to cart",     # dark on light button
    "footer": "Need help? Contact support",
}


# The brainstem binary under test (CTest sets BRAINSTEM_BIN) and why the tests skip without the
# screen tools.
BIN = os.environ.get("BRAINSTEM_BIN", "build/brainstem")
MISSING_TOOLS = "Xvfb, xterm or ImageMagick not installed (scripts/setup-deps.sh)"


def have_tools():
    return all(shutil.which(t) for t in ("Xvfb", "xterm", "display")) and os.path.exists(
        "/usr/bin/convert")


def render_page(path, width=560, height=320):
    t = PAGE_TEXT
    cmd = ["/usr/bin/convert", "-size", f"{width}x{height}", "xc:#f4f4f4",
           "-font", "DejaVu-Sans", "-pointsize", "16",
           "-fill", "#303845", "-draw", f"rectangle 0,0 {width},40",
           "-fill", "white", "-annotate", "+16+27", t["title"],
           "-fill", "#111111", "-annotate", "+20+80", t["label1"],
           "-annotate", "+20+115", t["label2"],
           "-fill", "#1f5fbf", "-draw", "rectangle 20,150 190,190",
           "-fill", "white", "-annotate", "+40+176", t["button_dark"],
           "-fill", "#dddddd", "-draw", "rectangle 230,150 400,190",
           "-fill", "#111111", "-annotate", "+250+176", t["button_light"],
           "-pointsize", "13", "-annotate", "+20+260", t["footer"],
           path]
    subprocess.run(cmd, check=True)


class Screen:
    """Xvfb with known windows. `expected_lines()` is the ground truth."""

    def __init__(self, display, width, height, workdir):
        self.display = display
        self.width, self.height = width, height
        self.workdir = workdir
        self.procs = []
        self.env = dict(os.environ, DISPLAY=display)
        self.text_files = {}

    def start(self):
        xvfb = subprocess.Popen(["Xvfb", self.display, "-screen", "0",
                                 f"{self.width}x{self.height}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(xvfb)
        deadline = time.time() + 10
        sock = f"/tmp/.X11-unix/X{self.display.lstrip(':')}"
        while not os.path.exists(sock):
            if time.time() > deadline or xvfb.poll() is not None:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        y = 10
        for size, lines in XTERM_LINES.items():
            path = os.path.join(self.workdir, f"xterm{size}.txt")
            self.write_lines(size, lines)
            rows = len(lines) + 1
            self.procs.append(subprocess.Popen(
                ["xterm", "-geometry", f"48x{rows}+10+{y}", "-fa", "DejaVu Sans Mono",
                 "-fs", str(size), "-e", "sh", "-c", self._loop(path)],
                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            y += int(size * 1.5 * rows) + 24
        page = os.path.join(self.workdir, "page.png")
        render_page(page)
        self.procs.append(subprocess.Popen(
            ["display", "-geometry", f"+{min(self.width - 580, 640)}+10", page],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(2.5)  # windows map and draw

    @staticmethod
    def _loop(path):
        # Redraws only when the file changes, so an unchanged screen stays pixel-identical.
        stamp = path + ".shown"
        return (f"touch -d @0 {stamp}; while true; do if [ {path} -nt {stamp} ]; then "
                f"touch -r {path} {stamp}; clear; cat {path}; fi; sleep 0.1; done")

    def write_lines(self, size, lines):
        path = os.path.join(self.workdir, f"xterm{size}.txt")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
        XTERM_LINES[size] = list(lines)

    def expected_lines(self):
        out = [l for lines in XTERM_LINES.values() for l in lines]
        return out + list(PAGE_TEXT.values())

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def semi_global_distance(needle, hay):
    """Edit distance of `needle` to the best-matching substring of `hay`."""
    prev = [0] * (len(hay) + 1)
    for i in range(1, len(needle) + 1):
        cur = [i] + [0] * len(hay)
        for j in range(1, len(hay) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (needle[i - 1] != hay[j - 1]))
        prev = cur
    return min(prev)


def character_error_rate(expected_lines, ocr_lines):
    """Sum over expected lines of the distance to the best OCR line, over their length."""
    errors = 0
    total = 0
    per_line = {}
    for line in expected_lines:
        best = min((semi_global_distance(line, o) for o in ocr_lines), default=len(line))
        per_line[line] = best
        errors += best
        total += len(line)
    return errors / max(1, total), per_line


class Server:
    def __init__(self, binary, workdir, extra_sets=()):
        self.binary = binary
        self.workdir = workdir
        self.extra_sets = list(extra_sets)
        self.proc = None
        self.port = None
        self.shm_name = f"ocrtest{os.getpid()}"

    def start(self):
        port_file = os.path.join(self.workdir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        cmd = [self.binary, "serve", "--port", "0", "--port-file", port_file,
               "--artifact-dir", os.path.join(root, "artifacts"), "--format", "onnx",
               "--set", f"shm.name={self.shm_name}", "--set", "logging.level=warn"]
        for s in self.extra_sets:
            cmd += ["--set", s]
        self.log = open(os.path.join(self.workdir, "server.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " +
                                   open(os.path.join(self.workdir, "server.log")).read())
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    @property
    def shm_url(self):
        return f"shm://{self.shm_name}?frames=1&frame_bytes={16 << 20}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def ocr_raw(self, raw, width, height, path="/v1/ocr", query="", headers=None):
        h = {"Content-Type": "application/octet-stream", "X-Width": str(width),
             "X-Height": str(height), "X-Stride": str(width * 4), "X-Format": "bgra8"}
        h.update(headers or {})
        status, body = self.request("POST", path + query, raw, h)
        return status, json.loads(body)

    def metrics(self):
        _, body = self.request("GET", "/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("brainstem_ocr_") and " " in line and "{" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def capture_raw(binary, display, workdir, no_shm=False):
    """One frame through `brainstem capture --raw-out`: (bytes, capture stats)."""
    path = os.path.join(workdir, "frame.raw")
    cmd = [binary, "capture", "--display", display, "--once", "--raw-out", path]
    if no_shm:
        cmd.append("--no-shm")
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    stats = json.loads(r.stderr.strip().splitlines()[-1])
    with open(path, "rb") as f:
        return f.read(), stats
