"""Line charts as standalone SVG files, drawn from a run's own numbers, for RESULTS.md to show
beside its tables. No plotting library: a chart is a few dozen SVG elements.

    chart(name, title, x_label, y_label, series, log_x=False) -> markdown image line

`series` maps a system's name to its (x, y) points; the SVG goes to $BENCH_CHARTS/NAME.svg (the
directory run.sh passes) and the returned line links it as $BENCH_CHARTS_LINK/NAME.svg (where it
ends up beside RESULTS.md). Without $BENCH_CHARTS no file is written and no line returned.
"""
import html
import math
import os

W, H = 600, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 170, 36, 44
COLOURS = {"direct": "#555555", "limit": "#999999", "pantry": "#1f77b4", "pantry_verify": "#6baed6",
           "squid": "#d62728", "distribution": "#2ca02c", "mitmproxy": "#9467bd"}
EXTRA = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def nice_max(v):
    """A round number at or above v (1, 2 or 5 times a power of ten)."""
    if v <= 0:
        return 1
    p = 10 ** math.floor(math.log10(v))
    return next(m * p for m in (1, 2, 5, 10) if m * p >= v)


def fmt(v):
    if v >= 1000:
        return f"{v / 1000:g}k" if v < 1e6 else f"{v / 1e6:g}M"
    return f"{v:g}"


def svg(title, x_label, y_label, series, log_x=False):
    points = [p for ps in series.values() for p in ps]
    xs = sorted({x for x, _ in points})
    y_max = nice_max(max(y for _, y in points))
    tx = (lambda x: math.log10(x)) if log_x else (lambda x: x)
    lo, hi = tx(xs[0]), tx(xs[-1])
    span = (hi - lo) or 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    px = lambda x: LEFT + (tx(x) - lo) / span * pw  # noqa: E731
    py = lambda y: TOP + ph - y / y_max * ph  # noqa: E731
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{e(title)}</text>']
    for i in range(5):
        y = y_max * i / 4
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{fmt(y)}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{fmt(x)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{TOP + ph}" y2="{TOP + ph}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + ph}" stroke="#333"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle">{e(x_label)}</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {TOP + ph / 2})">{e(y_label)}</text>')
    extra = iter(EXTRA)
    for i, (name, ps) in enumerate(series.items()):
        colour = COLOURS.get(name) or next(extra, "#000000")
        ps = sorted(ps)
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(ps))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in ps]
        ly = TOP + 12 + i * 16
        out.append(f'<line x1="{W - RIGHT + 12}" x2="{W - RIGHT + 30}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{W - RIGHT + 34}" y="{ly}">{e(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def chart(name, title, x_label, y_label, series, log_x=False):
    directory = os.environ.get("BENCH_CHARTS")
    series = {k: v for k, v in series.items() if v}
    if not directory or not series:
        return []
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{name}.svg"), "w") as f:
        f.write(svg(title, x_label, y_label, series, log_x))
    link = os.environ.get("BENCH_CHARTS_LINK") or os.path.basename(directory.rstrip("/"))
    return [f"![{title}]({link}/{name}.svg)", ""]
