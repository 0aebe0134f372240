"""What the benchmark scripts (bench-idle, profile, soak) share: the release build, a fresh
server process, sampling a process from /proc, and drawing lines over time as SVG.
Nothing here measures on its own."""

import os
import subprocess
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# Committed figures (plots, flame graphs) live in docs/bench/, linked from BENCHMARKS.md.
FIGURES = os.path.join(ROOT, "docs", "bench")
SCRATCH = os.path.join(TARGET, "bench")
API_KEY = "bench"
API_SECRET = "bench-secret-0123456789-0123456789-abcdef"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "switchyard", "-p", "loadtest"],
                   cwd=ROOT, check=True)
    os.makedirs(FIGURES, exist_ok=True)
    os.makedirs(SCRATCH, exist_ok=True)


def binary(name):
    return os.path.join(TARGET, "release", name)


def start_server(http_port, rtc_port, *extra):
    """A release server on 127.0.0.1 with API keys, no TURN and no drain on SIGTERM."""
    server = subprocess.Popen(
        [binary("switchyard"), "--http-bind", f"127.0.0.1:{http_port}", "--rtc-port", str(rtc_port),
         "--announce-ip", "127.0.0.1", "--no-turn", "--log", "warn",
         "--api-key", API_KEY, "--api-secret", API_SECRET, "--drain-secs", "0", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                return server
        except Exception:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not answer /healthz within 20 s")


def stop(server):
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def loadtest_args(http_port):
    return ["--url", f"http://127.0.0.1:{http_port}", "--api-key", API_KEY, "--api-secret", API_SECRET]


def shown(args):
    """A command line for a report, without the secret."""
    return " ".join("SECRET" if a == API_SECRET else a for a in args)


def sample(pid):
    """(CPU seconds, RSS bytes, open file descriptors, threads) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * PAGE
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return cpu, rss, fds, int(fields[17])


def metrics(http_port):
    """The server's /metrics as {name: value} (unlabelled samples only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                pass
    return values


class Sampler(threading.Thread):
    """Samples a process every `period` s until stopped: dicts of t (s since start), cpu, rss,
    fds, threads, plus what `extra()` returns."""

    def __init__(self, pid, period=1.0, extra=None):
        super().__init__(daemon=True)
        self.pid, self.period, self.extra = pid, period, extra
        self.samples, self.halt = [], threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while not self.halt.is_set():
            try:
                cpu, rss, fds, threads = sample(self.pid)
            except OSError:
                return
            row = {"t": time.monotonic() - self.t0, "cpu": cpu, "rss": rss, "fds": fds, "threads": threads}
            if self.extra:
                try:
                    row.update(self.extra())
                except Exception:
                    pass
            self.samples.append(row)
            self.halt.wait(self.period)

    def finish(self):
        self.halt.set()
        self.join()
        return self.samples


def cpu_percent(samples):
    """Per interval: (t, % of one core) from cumulative CPU seconds."""
    return [(b["t"], 100 * (b["cpu"] - a["cpu"]) / max(b["t"] - a["t"], 1e-3))
            for a, b in zip(samples, samples[1:])]


def plot(path, title, panels, x_label="seconds", marks=()):
    """Stacked line charts sharing the time axis. panels: [(label, unit, [(t, value)], colour)];
    marks: [(t, text)] drawn as dashed vertical lines."""
    width, panel_h, pad, top = 820, 120, 60, 36
    height = top + len(panels) * (panel_h + 24) + 30
    t_max = max((p[-1][0] for _, _, p, _ in panels if p), default=1) or 1
    x = lambda t: pad + (width - 2 * pad) * t / t_max
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    for i, (label, unit, points, colour) in enumerate(panels):
        y0 = top + i * (panel_h + 24)
        v_max = max((v for _, v in points), default=1) * 1.1 or 1
        y = lambda v: y0 + panel_h - panel_h * v / v_max
        out += [f'<text x="{pad}" y="{y0 - 4}">{label}</text>',
                f'<line x1="{pad}" y1="{y0 + panel_h}" x2="{width - pad}" y2="{y0 + panel_h}" stroke="#999"/>',
                f'<line x1="{pad}" y1="{y0}" x2="{pad}" y2="{y0 + panel_h}" stroke="#999"/>',
                f'<text x="{pad - 4}" y="{y0 + 8}" text-anchor="end">{v_max:.3g} {unit}</text>',
                f'<text x="{pad - 4}" y="{y0 + panel_h}" text-anchor="end">0</text>']
        for t, text in marks:
            out.append(f'<line x1="{x(t):.1f}" y1="{y0}" x2="{x(t):.1f}" y2="{y0 + panel_h}" '
                       f'stroke="#bbb" stroke-dasharray="4"/>')
            if i == 0:
                out.append(f'<text x="{x(t) + 3:.1f}" y="{y0 + 10}" fill="#666">{text}</text>')
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" points="{line}"/>')
    out.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">{x_label} '
               f'(0 to {t_max:.0f})</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))
