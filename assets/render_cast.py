#!/usr/bin/python3
"""Render an asciinema v2 cast to a GIF and PNG screenshots (what `agg` does;
agg is not packaged for Debian nor on crates.io).

The cast is replayed through pyte (a VT100 emulator) and each screen is drawn
with Pillow: DejaVu Sans Mono for text, box drawing and braille, Noto Sans
CJK for Chinese, Symbola for emoji. Colours: the Dracula palette, as
demo.tape's `Set Theme "Dracula"`.

    render_cast.py CAST [--start S] [--gif OUT.gif] [--fps N]
                   [--png NAME=REGEX[@DELAY]]... [--png-dir DIR]

--start S skips the first S seconds (the hidden build); --png saves the
screen DELAY seconds (default 0.5) after REGEX first matches its text.
Debian packages: python3-pil python3-pyte python3-fonttools fonts-dejavu-core
fonts-noto-cjk fonts-symbola.
"""

import argparse
import copy
import json
import re
import unicodedata

import pyte
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont

FONT_SIZE = 14
PAD = 10
MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
MONO_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
CJK = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2)  # SC
EMOJI = "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"

# Dracula.
BG = (0x28, 0x2A, 0x36)
FG = (0xF8, 0xF8, 0xF2)
ANSI = {
    "black": (0x21, 0x22, 0x2C),
    "red": (0xFF, 0x55, 0x55),
    "green": (0x50, 0xFA, 0x7B),
    "brown": (0xF1, 0xFA, 0x8C),
    "yellow": (0xF1, 0xFA, 0x8C),
    "blue": (0xBD, 0x93, 0xF9),
    "magenta": (0xFF, 0x79, 0xC6),
    "cyan": (0x8B, 0xE9, 0xFD),
    "white": (0xF8, 0xF8, 0xF2),
    "brightblack": (0x62, 0x72, 0xA4),
    "brightred": (0xFF, 0x6E, 0x6E),
    "brightgreen": (0x69, 0xFF, 0x94),
    "brightbrown": (0xFF, 0xFF, 0xA5),
    "brightyellow": (0xFF, 0xFF, 0xA5),
    "brightblue": (0xD6, 0xAC, 0xFF),
    "brightmagenta": (0xFF, 0x92, 0xDF),
    "brightcyan": (0xA4, 0xFF, 0xFF),
    "brightwhite": (0xFF, 0xFF, 0xFF),
}


def cmap(path, index=None):
    font = TTCollection(path).fonts[index] if index is not None else TTFont(path)
    return set(font.getBestCmap().keys())


class Painter:
    def __init__(self, cols, rows):
        self.mono = ImageFont.truetype(MONO, FONT_SIZE)
        self.bold = ImageFont.truetype(MONO_BOLD, FONT_SIZE)
        self.cjk = ImageFont.truetype(CJK[0], FONT_SIZE, index=CJK[1])
        self.emoji = ImageFont.truetype(EMOJI, FONT_SIZE)
        self.mono_cover = cmap(MONO)
        self.cjk_cover = cmap(*CJK)
        ascent, descent = self.mono.getmetrics()
        self.cw = round(self.mono.getlength("M"))
        self.ch = ascent + descent
        self.cols, self.rows = cols, rows
        self.size = (cols * self.cw + 2 * PAD, rows * self.ch + 2 * PAD)

    def font_for(self, ch, bold):
        cp = ord(ch)
        if cp in self.mono_cover:
            return self.bold if bold else self.mono
        if cp in self.cjk_cover and unicodedata.east_asian_width(ch) in "WF":
            return self.cjk
        return self.emoji

    def draw(self, screen):
        img = Image.new("RGB", self.size, BG)
        d = ImageDraw.Draw(img)
        for y in range(self.rows):
            line = screen.buffer[y]
            x = 0
            while x < self.cols:
                c = line[x]
                wide = x + 1 < self.cols and line[x + 1].data == ""
                span = 2 if wide else 1
                fg = color(c.fg, FG, c.bold)
                bg = color(c.bg, BG, False)
                if c.reverse:
                    fg, bg = bg, fg
                px, py = PAD + x * self.cw, PAD + y * self.ch
                if bg != BG:
                    d.rectangle([px, py, px + span * self.cw - 1, py + self.ch - 1], fill=bg)
                if c.data and c.data != " ":
                    font = self.font_for(c.data[0], c.bold)
                    if font is self.mono or font is self.bold:
                        d.text((px, py), c.data, font=font, fill=fg)
                    else:
                        # Centre foreign glyphs in their cells, on the text baseline.
                        w = font.getlength(c.data)
                        off = max(0, (span * self.cw - w) / 2)
                        d.text((px + off, py + self.ch - 2), c.data, font=font, fill=fg, anchor="ls")
                x += span
        return img


def color(name, default, bold):
    if name == "default":
        return default
    if bold and name in ANSI and not name.startswith("bright"):
        name = "bright" + name
    if name in ANSI:
        return ANSI[name]
    if re.fullmatch(r"[0-9a-fA-F]{6}", name):
        return tuple(int(name[i : i + 2], 16) for i in (0, 2, 4))
    return default


ALT_SCREEN = re.compile(r"(\x1b\[\?1049[hl])")


class Terminal:
    """pyte plus the alternate screen (pyte ignores mode 1049): the
    dashboard draws on a clean screen and the shell comes back after it."""

    def __init__(self, cols, rows):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.saved = None

    def feed(self, data):
        for part in ALT_SCREEN.split(data):
            if part == "\x1b[?1049h":
                self.saved = (copy.deepcopy(self.screen.buffer), copy.copy(self.screen.cursor))
                self.screen.erase_in_display(2)
            elif part == "\x1b[?1049l":
                if self.saved:
                    self.screen.buffer.clear()
                    self.screen.buffer.update(self.saved[0])
                    self.screen.cursor = self.saved[1]
                    self.screen.dirty.update(range(self.screen.lines))
                    self.saved = None
            elif part:
                self.stream.feed(part)


def text_of(screen):
    # (pyte's own `display` trips over half-overwritten wide characters.)
    return "\n".join(
        "".join(screen.buffer[y][x].data for x in range(screen.columns))
        for y in range(screen.lines)
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cast")
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--gif")
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--png", action="append", default=[])
    ap.add_argument("--png-dir", default=".")
    args = ap.parse_args()

    with open(args.cast, encoding="utf-8") as f:
        header = json.loads(f.readline())
        events = [json.loads(line) for line in f if line.strip()]
    events = [(t, data) for t, kind, data in events if kind == "o"]
    cols, rows = header["width"], header["height"]
    term = Terminal(cols, rows)
    screen = term.screen
    painter = Painter(cols, rows)

    shots = []
    for spec in args.png:
        name, rest = spec.split("=", 1)
        delay = 0.5
        m = re.fullmatch(r"(.*)@([0-9.]+)", rest)
        if m:
            rest, delay = m.group(1), float(m.group(2))
        shots.append({"name": name, "re": re.compile(rest), "due": None, "delay": delay})

    frames, durations = [], []
    step = 1.0 / args.fps
    end = events[-1][0] + 1.0 if events else 0.0
    t, i, last_text = args.start, 0, None
    while t <= end:
        while i < len(events) and events[i][0] <= t:
            term.feed(events[i][1])
            i += 1
        text = text_of(screen)
        for s in shots:
            if s["due"] is None and s["re"].search(text):
                s["due"] = t + s["delay"]
            if s["due"] is not None and s["due"] <= t and not s.get("done"):
                painter.draw(screen).save(f"{args.png_dir}/{s['name']}.png", optimize=True)
                s["done"] = True
        if args.gif:
            if text == last_text and frames:
                durations[-1] += step
            else:
                frames.append(painter.draw(screen))
                durations.append(step)
                last_text = text
        t += step

    for s in shots:
        if not s.get("done"):
            raise SystemExit(f"screenshot {s['name']}: /{s['re'].pattern}/ never matched")
    if args.gif:
        # One palette for every frame (sampled across the run): no flicker.
        sample = [frames[k] for k in range(0, len(frames), max(1, len(frames) // 8))]
        strip = Image.new("RGB", (painter.size[0], painter.size[1] * len(sample)))
        for k, im in enumerate(sample):
            strip.paste(im, (0, k * painter.size[1]))
        palette = strip.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        quantized = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        quantized[0].save(
            args.gif,
            save_all=True,
            append_images=quantized[1:],
            duration=[round(d * 1000) for d in durations],
            loop=0,
            optimize=True,
            disposal=1,
        )
        print(f"{args.gif}: {len(frames)} frames, {sum(durations):.1f}s")


if __name__ == "__main__":
    main()
